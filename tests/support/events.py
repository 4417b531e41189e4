"""Input events as producers send them (raw-topic dicts), and the instants they carry.

Times are epoch milliseconds; T0 is 2026-09-21T14:13:20Z. Unit tests build their
`Event`s at these instants too; `generate(...)` streams end at END_MS.
"""

from __future__ import annotations

from typing import Any

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_790_000_000_000  # 2026-09-21T14:13:20Z
END_MS = T0  # end of the simulated streams (`stream.devtools.simulate.generate`)


def interaction(
    event_id: str,
    ts: int,
    channel: str,
    *,
    customer_id: str | None = None,
    anonymous_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An interaction of a known customer or of an anonymous device (or both)."""
    person = {
        name: v for name, v in (("anonymous_id", anonymous_id), ("customer_id", customer_id)) if v is not None
    }
    return {"event_id": event_id, "type": "interaction", "ts": ts, **person, "channel": channel, **fields}


def touch(pid: str, n: int, ts: int, channel: str, **fields: Any) -> dict[str, Any]:
    """Customer `pid`'s n-th event, an interaction: event id `pid-n`."""
    return interaction(f"{pid}-{n}", ts, channel, customer_id=pid, **fields)


def anon(event_id: str, anonymous_id: str, ts: int, channel: str) -> dict[str, Any]:
    """An interaction of an anonymous device."""
    return interaction(event_id, ts, channel, anonymous_id=anonymous_id)


def conversion(
    event_id: str,
    ts: int,
    customer_id: str,
    kind: str = "purchase",
    value: float = 0.0,
    *,
    conversion_id: str | None = None,
    currency: str | None = "EUR",
) -> dict[str, Any]:
    """A conversion; without `conversion_id` (or `currency`) the field is left out."""
    doc: dict[str, Any] = {
        "event_id": event_id,
        "type": "conversion",
        "ts": ts,
        "customer_id": customer_id,
        "conversion": kind,
    }
    if conversion_id is not None:
        doc["conversion_id"] = conversion_id
    doc["value"] = value
    if currency is not None:
        doc["currency"] = currency
    return doc


def convert(pid: str, n: int, ts: int, kind: str, value: float) -> dict[str, Any]:
    """Customer `pid`'s n-th event, a conversion: event id `pid-n`, conversion id `kind-pid-n`."""
    return conversion(f"{pid}-{n}", ts, pid, kind, value, conversion_id=f"{kind}-{pid}-{n}")


def identify(event_id: str, anonymous_id: str, customer_id: str, ts: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "identify",
        "ts": ts,
        "anonymous_id": anonymous_id,
        "customer_id": customer_id,
    }


def revenue(event_id: str, ts: int, conversion_id: str, value: float, **person: str) -> dict[str, Any]:
    """Late revenue (CRM closed won) for an earlier conversion; person ids optional."""
    return {
        "event_id": event_id,
        "type": "revenue",
        "ts": ts,
        "conversion_id": conversion_id,
        "value": value,
        "currency": "EUR",
        **person,
    }


SCRIPT = [
    # alice: paid_search twice in one session, email, direct, then a purchase of 100
    touch("alice", 1, T0, "paid_search", source="google", medium="cpc", campaign="brand", cost=1.5),
    touch("alice", 2, T0 + 5 * MIN, "paid_search", source="google", medium="cpc", campaign="brand", cost=0.5),
    touch("alice", 3, T0 + 2 * HOUR, "email", source="newsletter", campaign="spring"),
    touch("alice", 4, T0 + DAY, "direct"),
    convert("alice", 5, T0 + DAY + HOUR, "purchase", 100.0),
    # bob: one organic visit, then a lead
    touch("bob", 1, T0, "organic_search", source="google"),
    convert("bob", 2, T0 + HOUR, "lead", 0.0),
    # carol: converts with no touchpoint at all
    convert("carol", 1, T0, "purchase", 40.0),
    # dave: the same display campaign twice, 31 minutes apart: two sessions
    touch("dave", 1, T0, "display", campaign="retargeting"),
    touch("dave", 2, T0 + 31 * MIN, "display", campaign="retargeting"),
    convert("dave", 3, T0 + 2 * HOUR, "purchase", 10.0),
]
SCRIPT_CONVERSIONS = ["alice-5", "bob-2", "carol-1", "dave-3"]  # the attribution ids SCRIPT gives
