"""Report counters: what each applied event adds to the live marketing reports (pure).

The reports (`touchstream report`, `stream.core.report`) are sums of integer counters,
kept per Kafka partition and UTC day in Redis and applied under the partition's offset
fence with the path counts, so a replay never counts twice (docs/reports.md). This module
says what one event's outputs add, as `Count`s:

- an attribution (`attribution.conversions` value of kind `conversion`), on the day of the
  conversion, in its currency: for every model and every dimension value its touchpoints'
  shares `s` add up to, `c|…` += s and `v|…` += s × value (an unattributed conversion: 1
  and the value under `(unattributed)`); per conversion type the count, value, credited
  touchpoints and days to conversion; its path's conversions and value; one event of its
  currency. A revision withdraws what the previous revision added (the same counters,
  negated: a `withdraw` report message carries that revision) and adds its own;
- a revenue value (kind `revenue`), on the revenue event's day, in its currency: `r|…` +=
  s × revenue with the shares of the conversion it names, and one event of its currency;
- an interaction applied to a journey (a `report` message): its cost (`k|…`, in the
  reporting currency) and one interaction of its kind, per dimension value;
- a spend event (a `report` message): its amount, in its currency, per dimension value.

Counters are integers: money, shares and days in millionths (`SCALE`), so sums are exact
and independent of order. Every field ends with the one free-text part it has (the
dimension value, conversion type or path) and names its other parts first, so it splits
unambiguously; `fold` is the field with that part replaced by `(other)`, where Redis counts
once a partition's day holds the maximum number of counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.core.output import Message, dumps
from stream.core.records import Event
from stream.core.topics import CONVERSIONS, REPORT

DIMENSIONS = ("channel", "campaign", "term", "medium_kind", "directness", "stage")
NONE, OTHER, UNATTRIBUTED = "(none)", "(other)", "(unattributed)"
SCALE = 1_000_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Count:
    day: str  # UTC calendar day, YYYY-MM-DD
    field: str
    fold: str  # the field with its free-text part folded into (other)
    amount: int


def day_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def tag(text: str) -> str:
    """A fixed part of a field (currency, interaction kind): no separator inside."""
    return text.replace("|", "/")


def _count(day: str, prefix: str, free: str, amount: int) -> Count:
    return Count(day, f"{prefix}|{free}", f"{prefix}|{OTHER}", amount)


def _micros(x: float) -> int:
    return round(x * SCALE)


def interaction_message(event: Event) -> Message:
    """What an interaction applied to a journey adds (internal, never produced)."""
    doc = {"interaction": {k: getattr(event, k) for k in ("ts", "cost", "interaction", *DIMENSIONS)}}
    return Message(REPORT, None, dumps(doc))


def spend_message(event: Event) -> Message:
    doc = {
        "spend": {k: getattr(event, k) for k in ("ts", "value", "currency", "channel", "campaign", "term")}
    }
    return Message(REPORT, None, dumps(doc))


def withdraw_message(previous: dict[str, Any]) -> Message:
    """A revision replaces `previous` (the attribution value it revises): its counters go."""
    return Message(REPORT, None, dumps({"withdraw": previous}))


def counts_of(messages: Iterable[Message], currency: str) -> list[Count]:
    """The counters one event's messages add; `currency`: that of values that name none."""
    counts: list[Count] = []
    for msg in messages:
        if msg.topic == CONVERSIONS:
            doc = orjson.loads(msg.value)
            if doc["kind"] == "revenue":
                counts += revenue_counts(doc, currency)
            else:
                counts += attribution_counts(doc, currency)
        elif msg.topic == REPORT:
            doc = orjson.loads(msg.value)
            if "interaction" in doc:
                counts += interaction_counts(doc["interaction"])
            elif "spend" in doc:
                counts += spend_counts(doc["spend"], currency)
            else:
                counts += [
                    Count(c.day, c.field, c.fold, -c.amount)
                    for c in attribution_counts(doc["withdraw"], currency)
                ]
    return counts


def _groups(doc: dict[str, Any], shares: Sequence[float]) -> dict[tuple[str, str], float]:
    """(dimension, value) -> the summed share of the touchpoints with that value."""
    if doc["unattributed"]:
        return {(dim, UNATTRIBUTED): 1.0 for dim in DIMENSIONS}
    sums: dict[tuple[str, str], float] = {}
    for touch, share in zip(doc["touchpoints"], shares, strict=True):
        for dim in DIMENSIONS:
            key = (dim, touch.get(dim) or NONE)
            sums[key] = sums.get(key, 0.0) + share
    return sums


def attribution_counts(doc: dict[str, Any], currency: str) -> list[Count]:
    """The counters an attribution value (kind `conversion`) adds."""
    conversion = doc["conversion"]
    day, cur = day_of(conversion["ts"]), tag(conversion["currency"] or currency)
    value = conversion["value"] or 0.0
    counts = [Count(day, f"x|{cur}", f"x|{cur}", 1)]
    for model, credit in doc["models"].items():
        for (dim, group), share in _groups(doc, credit["shares"]).items():
            counts.append(_count(day, f"c|{cur}|{model}|{dim}", group, _micros(share)))
            counts.append(_count(day, f"v|{cur}|{model}|{dim}", group, _micros(share * value)))
    touches = doc["touchpoints"]
    kind = conversion["conversion"]
    counts += [
        _count(day, f"tn|{cur}", kind, 1),
        _count(day, f"tv|{cur}", kind, _micros(value)),
        _count(day, f"tp|{cur}", kind, len(touches)),
    ]
    if touches:
        days = (conversion["ts"] - touches[0]["ts"]) / DAY_MS
        counts += [_count(day, f"ta|{cur}", kind, 1), _count(day, f"td|{cur}", kind, _micros(days))]
    path = " > ".join(t["channel"] for t in touches) if touches else UNATTRIBUTED
    counts += [_count(day, f"pn|{cur}", path, 1), _count(day, f"pv|{cur}", path, _micros(value))]
    return counts


def revenue_counts(doc: dict[str, Any], currency: str) -> list[Count]:
    """The counters a revenue value adds: its amount, by the shares it was credited with."""
    revenue = doc["revenue"]
    day, cur = day_of(revenue["ts"]), tag(revenue["currency"] or currency)
    counts = [Count(day, f"x|{cur}", f"x|{cur}", 1)]
    for model, credit in doc["models"].items():
        for (dim, group), share in _groups(doc, credit["shares"]).items():
            counts.append(_count(day, f"r|{cur}|{model}|{dim}", group, _micros(share * revenue["value"])))
    return counts


def interaction_counts(doc: dict[str, Any]) -> list[Count]:
    day, kind = day_of(doc["ts"]), tag(doc["interaction"] or NONE)
    counts = []
    for dim in DIMENSIONS:
        group = doc[dim] or NONE
        counts.append(_count(day, f"i|{dim}|{kind}", group, 1))
        if doc["cost"]:
            counts.append(_count(day, f"k|{dim}", group, _micros(doc["cost"])))
    return counts


def spend_counts(doc: dict[str, Any], currency: str) -> list[Count]:
    day, cur = day_of(doc["ts"]), tag(doc["currency"] or currency)
    counts = [Count(day, f"x|{cur}", f"x|{cur}", 1)]
    for dim in DIMENSIONS:
        counts.append(_count(day, f"s|{cur}|{dim}", doc.get(dim) or NONE, _micros(doc["value"])))
    return counts
