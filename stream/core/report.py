"""The marketing report from summed counters (pure): `touchstream report`'s JSON.

`build_report` reads the counters of `stream.core.counters`, summed over the days of the
period and over the partitions, and derives, per value of one dimension (channel,
campaign, term, medium_kind, directness or stage): cost (the interactions' cost plus
the spend in the report's currency), interactions by kind, CTR (clicks / impressions),
and per model the credited conversions, value and late revenue, CPA (cost /
conversions) and ROAS ((value + revenue) / cost), each null where its divisor is 0; per
conversion type the count, value, mean credited touchpoints and mean days to conversion
(over attributed conversions); the top converting paths; and how many events in other
currencies were left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

from stream.core.counters import DIMENSIONS, NONE, SCALE, tag

ROUND = 6


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report covers: whole UTC days `first`..`last`, rows `by` one dimension."""

    first: str
    last: str
    by: str = "channel"
    models: tuple[str, ...] = ()
    currency: str = "EUR"
    top_paths: int = 10

    @property
    def days(self) -> list[str]:
        return days_between(self.first, self.last)


def parse_query(
    first: str | None,
    last: str | None,
    today: date,
    *,
    by: str | None = None,
    models: str | None = None,
    default_models: tuple[str, ...] = (),
    currency: str = "EUR",
    top_paths: str | int | None = None,
) -> ReportQuery:
    """A report's query from user text (CLI flags, web parameters); ValueError says what is
    wrong in one line. The period defaults to the 7 days up to `today`; `models` (comma
    separated) to `default_models`."""
    from stream.attribution import check_names  # numpy: only where a report is asked for

    names = check_names(m.strip() for m in (models or "").split(",") if m.strip()) or default_models
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=6)
    except ValueError as exc:
        raise ValueError(f"from/to: {exc} (expected YYYY-MM-DD)") from None
    if start > end:
        raise ValueError(f"empty period: from {start} is after to {end}")
    if (by or "channel") not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}; expected one of {', '.join(DIMENSIONS)}")
    try:
        top = 10 if top_paths is None else int(top_paths)
    except ValueError:
        top = -1
    if top < 0:
        raise ValueError(f"top paths must be a whole number, 0 or more (got {top_paths!r})")
    return ReportQuery(start.isoformat(), end.isoformat(), by or "channel", names, currency, top)


def days_between(first: str, last: str) -> list[str]:
    """Every UTC day from `first` to `last` (YYYY-MM-DD), both included."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def _ratio(top: float, bottom: float) -> float | None:
    return round(top / bottom, ROUND) if bottom else None


def _num(micros: int) -> float:
    return round(micros / SCALE, ROUND)


def _split(counters: Mapping[str, int]) -> dict[str, dict[tuple[str, ...], int]]:
    """Counters by kind: `c|EUR|linear|<profile>` -> {"c": {("EUR", "linear", "<profile>"):
    n}}; the last part (the free text) may hold separators itself."""
    parts = {"c": 3, "v": 3, "r": 3, "s": 2, "k": 1, "i": 2, "x": 1}
    parts |= dict.fromkeys(("tn", "tv", "tp", "ta", "td", "pn", "pv"), 2)
    out: dict[str, dict[tuple[str, ...], int]] = {}
    for name, amount in counters.items():
        kind, _, rest = name.partition("|")
        if kind in parts:
            key = tuple(rest.split("|", parts[kind] - 1))
            out.setdefault(kind, {})[key] = amount
    return out


def report_of(counters: Mapping[str, int], query: ReportQuery) -> dict[str, Any]:
    """The report a query asks for, over the summed counters of its days."""
    return build_report(
        counters, (query.first, query.last), query.by, query.models, query.currency, query.top_paths
    )


def build_report(
    counters: Mapping[str, int],
    period: tuple[str, str],
    by: str,
    models: Sequence[str],
    currency: str,
    top_paths: int = 10,
) -> dict[str, Any]:
    """The report of one period (first and last day) over the summed `counters`."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}; expected one of {', '.join(DIMENSIONS)}")
    cur = tag(currency)
    split = _split(counters)
    return {
        "from": period[0],
        "to": period[1],
        "by": by,
        "currency": currency,
        "models": list(models),
        "rows": _rows(split, by, models, cur),
        "conversion_types": _types(split, cur),
        "top_paths": _paths(split, cur, top_paths),
        "other_currencies": {c: n for (c,), n in sorted(split.get("x", {}).items()) if c != cur and n},
    }


def _by(by: str) -> Callable[[str], str]:
    """A touch profile (JSON array) -> its value of dimension `by`, `(none)` if missing."""
    index = DIMENSIONS.index(by)
    cache: dict[str, str] = {}

    def group(profile: str) -> str:
        if profile not in cache:
            cache[profile] = orjson.loads(profile)[index] or NONE
        return cache[profile]

    return group


def _rows(
    split: dict[str, dict[tuple[str, ...], int]], by: str, models: Sequence[str], cur: str
) -> list[dict]:
    group = _by(by)
    cost: dict[str, int] = {}
    for (profile,), micros in split.get("k", {}).items():
        cost[group(profile)] = cost.get(group(profile), 0) + micros
    for (c, profile), micros in split.get("s", {}).items():
        if c == cur:
            cost[group(profile)] = cost.get(group(profile), 0) + micros
    kinds: dict[str, dict[str, int]] = {}
    for (kind, profile), n in split.get("i", {}).items():
        if n:
            per_kind = kinds.setdefault(group(profile), {})
            per_kind[kind] = per_kind.get(kind, 0) + n
    credited: dict[str, dict[str, list[int]]] = {}  # group -> model -> [conversions, value, revenue]
    for i, kind in enumerate("cvr"):
        for (c, model, profile), micros in split.get(kind, {}).items():
            if c == cur and model in models:
                credited.setdefault(group(profile), {}).setdefault(model, [0, 0, 0])[i] += micros
    groups = (
        {g for g, m in cost.items() if m}
        | set(kinds)
        | {g for g, per_model in credited.items() if any(any(v) for v in per_model.values())}
    )
    return [_row(g, cost.get(g, 0), kinds.get(g, {}), credited.get(g, {}), models) for g in sorted(groups)]


def _row(
    group: str, cost_micros: int, kinds: dict[str, int], credited: dict[str, list[int]], models: Sequence[str]
) -> dict[str, Any]:
    cost = _num(cost_micros)
    per_model = {}
    for model in models:
        conversions, value, revenue = (_num(m) for m in credited.get(model, [0, 0, 0]))
        per_model[model] = {
            "conversions": conversions,
            "value": value,
            "revenue": revenue,
            "cpa": _ratio(cost, conversions),
            "roas": _ratio(value + revenue, cost),
        }
    return {
        "group": group,
        "cost": cost,
        "interactions": sum(kinds.values()),
        "interactions_by_kind": dict(sorted(kinds.items())),
        "ctr": _ratio(kinds.get("click", 0), kinds.get("impression", 0)),
        "models": per_model,
    }


def _types(split: dict[str, dict[tuple[str, ...], int]], cur: str) -> list[dict[str, Any]]:
    def of(kind: str) -> dict[str, int]:
        return {t: n for (c, t), n in split.get(kind, {}).items() if c == cur}

    count, value, touches, attributed, days = (of(k) for k in ("tn", "tv", "tp", "ta", "td"))
    return [
        {
            "conversion": kind,
            "count": n,
            "value": _num(value.get(kind, 0)),
            "mean_touchpoints": _ratio(touches.get(kind, 0), n),
            "mean_days_to_conversion": _ratio(days.get(kind, 0) / SCALE, attributed.get(kind, 0)),
        }
        for kind, n in sorted(count.items())
        if n
    ]


def _paths(split: dict[str, dict[tuple[str, ...], int]], cur: str, top: int) -> list[dict[str, Any]]:
    values = {p: v for (c, p), v in split.get("pv", {}).items() if c == cur}
    counted = [(n, p) for (c, p), n in split.get("pn", {}).items() if c == cur and n]
    ranked = sorted(counted, key=lambda item: (-item[0], item[1]))[:top]
    return [{"path": p, "conversions": n, "value": _num(values.get(p, 0))} for n, p in ranked]
