"""Ingest: validate `touchpoints.raw`, route each event to its person, decide where it is applied.

Valid events are routed to their canonical person (the routing rule, `stream.core.routing`,
with its lookups in one Redis round trip per batch). An event read from the raw partition
of its first holder's *home* (the person-keyed partition its key hashes to) is applied
right here, by the same batch: a person's own events (producers key them by the person),
and a device's events, identified or not (the device forwards an identified one to its
customer: `first_holder`). Any other is re-keyed to the person-keyed topic, whose home
partition the person's worker reads: revenue routed by a lookup always, and events a
producer keyed otherwise. The way depends on the record, not on who owns what now nor
on what a lookup found, so a raw record read again takes the same way (see
`stream.runtime.pipeline`). Invalid events go to the DLQ with a reason, conflicting
identifies to `touchpoints.identity_conflicts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from stream.adapters.redis.directory import Directory
from stream.core.codec import encode_event
from stream.core.config import Limits
from stream.core.output import Message, conflict_message, dlq_message
from stream.core.records import Event, RawRecord
from stream.core.routing import Conflict, needs, route
from stream.core.topics import PERSONS
from stream.core.validation import Rejection, validate
from stream.runtime.metrics import Metrics, count_labels

# (person id, the raw partition its event was read from) -> the person's home partition when
# the event is applied where it was read, else None (re-keyed)
Home = Callable[[str, int], int | None]


@dataclass
class Routed:
    """What one batch of raw records became: for each record in order, the record to apply
    here (its `decoded`: the routed event, `key`: its person) or None, and the home
    partition of each person applied here; the messages to produce (re-keyed events with
    their raw timestamps, DLQ and conflict records); the highest event ts per raw partition
    of events with a person id."""

    applied: list[RawRecord | None] = field(default_factory=list)
    homes: dict[str, int] = field(default_factory=dict)
    outgoing: list[tuple[Message, float | None]] = field(default_factory=list)
    watermarks: dict[int, int] = field(default_factory=dict)
    types: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    conflicts: int = 0


@dataclass
class Ingestor:
    """Validates and routes `touchpoints.raw` records."""

    limits: Limits
    metrics: Metrics
    directory: Directory

    async def route(self, records: Sequence[RawRecord], home: Home) -> Routed:
        out = Routed()
        for rec, result, valid in await self._route(records):
            applied = None
            if valid is not None and valid.person_id:
                out.watermarks[rec.partition] = max(valid.ts, out.watermarks.get(rec.partition, 0))
            if isinstance(result, Event):
                assert valid is not None
                out.types.append(result.type)
                holder = first_holder(valid, result)
                # an event routed by a lookup (revenue to its conversion's person) is always
                # re-keyed: its first reading may have found no owner yet (the DLQ), and its
                # raw offset is then behind the path-count fence
                partition = home(holder, rec.partition) if valid.person_id else None
                if partition is not None:
                    out.homes[holder] = partition
                    # value None: the person-keyed copy's bytes were never made (the fence's
                    # content digest encodes the event itself, as for any copy)
                    applied = msgspec.structs.replace(rec, key=holder.encode(), value=None, decoded=result)
                else:
                    message = Message(PERSONS, holder.encode(), encode_event(result))
                    out.outgoing.append((message, rec.timestamp))
            elif isinstance(result, Conflict):
                out.conflicts += 1
                out.outgoing.append((conflict_message(result.event, result.mapped_to), None))
            else:
                out.reasons.append(result.reason_code)
                dead = dlq_message(
                    rec.key, rec.value, result.reason_code, result.error, rec.topic, rec.partition, rec.offset
                )
                out.outgoing.append((dead, None))
            out.applied.append(applied)
        return out

    def observe(self, routed: Routed, records: int) -> None:
        """Count a batch's events, rejections and conflicts (once it is done)."""
        self.metrics.identity_conflicts.inc(routed.conflicts)
        count_labels(self.metrics.events_in, routed.types)
        count_labels(self.metrics.dlq, routed.reasons)
        self.metrics.batch_size.labels("ingest").observe(records)

    def _validate(self, rec: RawRecord) -> Event | Rejection:
        return validate(rec.value, self.limits, round(rec.timestamp * 1000))

    async def _route(
        self, records: Sequence[RawRecord]
    ) -> list[tuple[RawRecord, Event | Rejection | Conflict, Event | None]]:
        """Validate, then route to the canonical person (one Redis round trip per batch):
        (record, what routing made of it, the valid event as the producer sent it)."""
        # a ts is bounded by the record's Kafka timestamp, as the consumer's decoder does
        results = [(rec, rec.decoded if rec.decoded is not None else self._validate(rec)) for rec in records]
        events = [r for _, r in results if isinstance(r, Event)]
        with self.metrics.redis_seconds.labels("lookup").time():
            claimed, identified, owners = await self.directory.lookup(needs(events))
        claims = iter(claimed)
        return [
            (rec, route(r, next(claims) if r.type == "identify" else None, identified, owners), r)
            if isinstance(r, Event)
            else (rec, r, None)
            for rec, r in results
        ]


def first_holder(sent: Event, routed: Event) -> str:
    """The person that applies an event first: for an event that carries only an anonymous id
    identified as a customer, the device's own person, which forwards it to the customer
    (`stream.core.person`); else the person it was routed to.

    Were such an event routed straight to the customer, a reading after the identify's claim
    would take it to another person than a reading before it (a crash between the two): the
    device would have applied it and the customer apply it again before the identify merges
    the device (no duplicate id to see), counting its report counters twice. Through the
    device, a second reading is a replay its fence recognises."""
    if sent.anonymous_id and not sent.customer_id and routed.person_id != sent.person_id:
        return sent.person_id
    return routed.person_id
