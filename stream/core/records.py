"""Frozen records that cross module boundaries.

Everything here is plain data: the pure core (sessionise, journey,
attribution) takes and returns these, and the Kafka/Redis shells turn them
into bytes. Timestamps are epoch milliseconds (UTC) everywhere.

The records made per event (`Event`, `Touchpoint`, `RawRecord`; `Journey` and `Pending`
in `journey.py`) are frozen msgspec `Struct`s: they behave as frozen dataclasses (equality,
hashing, positional and keyword construction) but are built and copied
(`msgspec.structs.replace`) several times faster, and an `Event` decodes straight from
JSON (`stream.core.codec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from msgspec import Struct

# "close_idle" and "expire" are internal: the worker's sweeper asks a person's journey to
# close an idle session (ts = wall clock) or to expire (ts = the partition's event-time
# watermark); producers can't send them (validation rejects the types).
EventType = Literal["interaction", "conversion", "identify", "revenue", "spend", "close_idle", "expire"]


class Event(Struct, frozen=True):
    """One validated input event (docs/architecture.md), normalised.

    `person_id` is the id the event belongs to before identity stitching:
    `customer_id` when present, else `anonymous_id`.
    """

    event_id: str
    type: EventType
    ts: int
    person_id: str
    anonymous_id: str | None = None
    customer_id: str | None = None
    # interaction fields
    interaction: str | None = None
    channel: str | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    medium_kind: str | None = None
    directness: str | None = None
    stage: str | None = None
    context: dict[str, Any] | None = None
    cost: float = 0.0
    # conversion / revenue fields
    conversion: str | None = None
    conversion_id: str | None = None
    value: float = 0.0  # a spend event's amount
    currency: str | None = None
    # the UTM keyword and creative (interactions and spend; they do not change the touch key)
    term: str | None = None
    content: str | None = None


class Touchpoint(Struct, frozen=True):
    """One session of a journey: the fields of its first interaction.

    `cost` is the summed cost of every interaction of the session.
    """

    ts: int
    channel: str
    session_id: str
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    interaction: str | None = None
    medium_kind: str | None = None
    directness: str | None = None
    stage: str | None = None
    context: dict[str, Any] | None = None
    cost: float = 0.0
    term: str | None = None  # last: stored states list a touchpoint's fields by position
    content: str | None = None


@dataclass(frozen=True, slots=True)
class AttributionInput:
    """What a model sees for one conversion.

    `touches` are t1..tn in time order (already filtered to the lookback
    window and to ts <= conversion_ts). `lead_ts` / `opportunity_ts` are the
    timestamps of the person's first `lead` / `opportunity` conversion (the
    current one included), or None when there has been none.
    """

    touches: tuple[Touchpoint, ...]
    conversion_ts: int
    lead_ts: int | None = None
    opportunity_ts: int | None = None


class RawRecord(Struct, frozen=True):
    """What the shells need of a Kafka record. `decoded` is what the topic's decoder made of
    the value as it was fetched (for the raw topic: an `Event` or a rejection), and
    `event_ms` its event time, which the batch consumer aligns partitions by."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # seconds
    decoded: Any = None
    event_ms: int | None = None
