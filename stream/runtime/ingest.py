"""The ingest handler: validate `touchpoints.raw`, route each event to its person, re-key it.

Valid events go to the person-keyed topic under their canonical person (the routing
rule, `stream.core.routing`, with its lookups in one Redis round trip per batch);
invalid ones go to the DLQ with a reason, conflicting identifies to
`touchpoints.identity_conflicts`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from stream.adapters.kafka.emitter import Emitter
from stream.adapters.redis.aggregates import PartitionStore
from stream.adapters.redis.directory import Directory
from stream.core.codec import encode_event
from stream.core.config import Limits
from stream.core.output import Message, conflict_message, dlq_message
from stream.core.records import Event, RawRecord
from stream.core.routing import Conflict, needs, route
from stream.core.topics import PERSONS
from stream.core.validation import Rejection, validate
from stream.runtime.metrics import Metrics, count_labels


@dataclass
class Ingestor:
    """Validates `touchpoints.raw` and re-keys valid events by person."""

    emitter: Emitter
    limits: Limits
    metrics: Metrics
    directory: Directory
    aggregates: PartitionStore

    async def handle(self, records: Sequence[RawRecord]) -> None:
        now_ms = int(time.time() * 1000)
        routed: list[tuple[Message, float | None]] = []  # person-keyed copies, raw timestamps
        side: list[Message] = []  # DLQ and identity-conflict records
        types: list[str] = []
        reasons: list[str] = []
        watermarks: dict[int, int] = {}  # raw partition -> highest ts of its events with a person id
        for rec, result, valid in await self._route(records, now_ms):
            if valid is not None and valid.person_id:
                watermarks[rec.partition] = max(valid.ts, watermarks.get(rec.partition, 0))
            if isinstance(result, Event):
                types.append(result.type)
                routed.append(
                    (Message(PERSONS, result.person_id.encode(), encode_event(result)), rec.timestamp)
                )
            elif isinstance(result, Conflict):
                self.metrics.identity_conflicts.inc()
                side.append(conflict_message(result.event, result.mapped_to))
            else:
                reasons.append(result.reason_code)
                side.append(
                    dlq_message(
                        rec.key,
                        rec.value,
                        result.reason_code,
                        result.error,
                        rec.topic,
                        rec.partition,
                        rec.offset,
                    )
                )
        await self.emitter.emit_stamped(routed + [(m, None) for m in side])
        # only once the events are on the person-keyed topic: an `expire` the sweeper sends by
        # this watermark is then queued behind them, never ahead of one (a crash in between
        # leaves the watermark behind, which only delays expiry)
        await self.aggregates.advance_watermarks(watermarks, now_ms)
        count_labels(self.metrics.events_in, types)
        count_labels(self.metrics.dlq, reasons)
        self.metrics.batch_size.labels("ingest").observe(len(records))

    async def _route(
        self, records: Sequence[RawRecord], now_ms: int
    ) -> list[tuple[RawRecord, Event | Rejection | Conflict, Event | None]]:
        """Validate, then route to the canonical person (one Redis round trip per batch):
        (record, what routing made of it, the valid event as the producer sent it)."""
        results = [
            (rec, rec.decoded if rec.decoded is not None else validate(rec.value, self.limits, now_ms))
            for rec in records
        ]
        events = [r for _, r in results if isinstance(r, Event)]
        claimed, identified, owners = await self.directory.lookup(needs(events))
        claims = iter(claimed)
        return [
            (rec, route(r, next(claims) if r.type == "identify" else None, identified, owners), r)
            if isinstance(r, Event)
            else (rec, r, None)
            for rec, r in results
        ]
