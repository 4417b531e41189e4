"""The demo's terminal summary (pure): one headline of live figures, a channel table under a
few models, and one readable line per conversion, built from the worker's `/api/live` and
`/api/report` documents and the conversion events (`attribution.conversions`).

    lead  c-283  120.00 EUR  referral > email > paid_search  last: paid_search  linear: 0.33 each
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PATH_SHOWN = 6  # touchpoints named in a line; longer paths keep their first 2 and last 3
SHORT = {"first_touch": "first", "last_touch": "last"}


def headline(live: dict[str, Any] | None) -> str:
    """`events 301/s · attributions 12/s · DLQ 0/s · lag 0 · p99 18 ms` ('–' before figures)."""
    now = (live or {}).get("now") or {}
    latency = (live or {}).get("latency") or {}
    lag = (live or {}).get("lag") or {}

    def rate(key: str) -> str:
        return "–" if key not in now else f"{now[key]:.0f}/s"

    p99, records = latency.get("p99_seconds"), lag.get("records")
    return " · ".join(
        [
            f"events {rate('events_in')}",
            f"attributions {rate('attributions_out')}",
            f"DLQ {rate('dlq')}",
            f"lag {'–' if records is None else records}",
            f"p99 {'–' if p99 is None else f'{p99 * 1000:.0f} ms'}",
        ]
    )


def channel_rows(report: dict[str, Any], models: Sequence[str]) -> list[list[str]]:
    """Per channel: its name, then conversions and value under each of `models`."""
    rows = []
    for row in report.get("rows", []):
        cells = [row["group"]]
        for model in models:
            credit = row["models"].get(model, {})
            cells += [f"{credit.get('conversions', 0.0):.2f}", f"{credit.get('value', 0.0):.2f}"]
        rows.append(cells)
    return rows


def path_text(channels: Sequence[str]) -> str:
    """`a > b > c`; a long path keeps its first two and last three channels."""
    if len(channels) <= PATH_SHOWN:
        return " > ".join(channels)
    hidden = len(channels) - 5
    return " > ".join([*channels[:2], f"…{hidden} more…", *channels[-3:]])


def credit_text(model: str, channels: Sequence[str], shares: Sequence[float]) -> str:
    """One model's credit in a few words: `linear: 0.33 each`, `last: paid_search`, or the
    two channels with the most credit (`time_decay: paid_search 0.52, email 0.31`)."""
    label = SHORT.get(model, model)
    if len(shares) > 1 and max(shares) - min(shares) < 1e-9:
        return f"{label}: {shares[0]:.2f} each"
    by_channel: dict[str, float] = {}
    for channel, share in zip(channels, shares, strict=True):
        by_channel[channel] = by_channel.get(channel, 0.0) + share
    ranked = sorted(by_channel.items(), key=lambda item: -item[1])
    if ranked[0][1] > 1 - 1e-9:
        return f"{label}: {ranked[0][0]}"
    return f"{label}: " + ", ".join(f"{channel} {share:.2f}" for channel, share in ranked[:2])


def conversion_line(doc: dict[str, Any], models: Sequence[str]) -> str:
    """One conversion event as a line: type, person, value, path and the credit of `models`."""
    conv = doc["conversion"]
    head = f"{conv['conversion']:<8} {doc['person_id']:<10} {conv['value']:>9.2f} {conv['currency'] or ''}"
    if doc["unattributed"] or not doc["touchpoints"]:
        return f"{head}  (no touchpoint in the lookback)"
    channels = [t["channel"] for t in doc["touchpoints"]]
    credits = [
        credit_text(m, channels, doc["models"][m]["shares"])
        for m in models
        if m in doc["models"] and doc["models"][m].get("shares")
    ]
    return "  ".join([head, path_text(channels), *credits])
