"""The imperative shell around the pure core: one batch in, Redis and Kafka out.

`Ingestor` validates raw values and re-keys them by person onto the internal
person-keyed topic (invalid ones go to the DLQ). `JourneyProcessor` applies a
batch of person-keyed events: one Redis round trip to load, the pure `step`
per person, one pipeline of fenced writes, then the outputs are produced and
awaited before Faust acks the batch (at-least-once; DESIGN.md §6).
`Sweeper` closes sessions that sat idle past the timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field

from stream.attribution import snapshot as snapshots
from stream.attribution.paths import seen
from stream.attribution.snapshot import Snapshot
from stream.emitter import Emitter
from stream.events import Limits, Rejection, decode_event, encode_event, validate
from stream.journey import EXPIRY_SLACK_MS, Rules
from stream.metrics import Metrics, count_labels
from stream.output import (
    CONVERSIONS,
    PATHS,
    PERSONS,
    SESSIONS,
    Message,
    conflict_message,
    dlq_message,
    dumps,
    model_messages,
    read_path_message,
)
from stream.person import Config, Positioned, StepResult, step
from stream.records import Event, RawRecord
from stream.retry import TransientError
from stream.store import JourneyStore, PartitionBatch, PathIncrement

log = logging.getLogger("touchstream.worker")

MAX_WRITE_ATTEMPTS = 10
CONTROL = ("close_idle", "expire")  # the sweeper's events: not producer data, no watermark


@dataclass
class Ingestor:
    """Validates `touchpoints.raw` and re-keys valid events by person."""

    emitter: Emitter
    limits: Limits
    metrics: Metrics
    store: JourneyStore

    async def handle(self, records: Sequence[RawRecord]) -> None:
        now_ms = int(time.time() * 1000)
        routed: list[tuple[Message, float | None]] = []  # person-keyed copies, raw timestamps
        side: list[Message] = []  # DLQ and identity-conflict records
        types: list[str] = []
        reasons: list[str] = []
        for rec, result in await self._route(records, now_ms):
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
        count_labels(self.metrics.events_in, types)
        count_labels(self.metrics.dlq, reasons)
        self.metrics.batch_size.labels("ingest").observe(len(records))

    async def _route(
        self, records: Sequence[RawRecord], now_ms: int
    ) -> list[tuple[RawRecord, Event | Rejection | Conflict]]:
        """Validate, then route to the canonical person (one Redis round trip per batch):
        identify claims its anonymous id (first mapping wins, a different one is a `Conflict`);
        an event with only an anonymous id goes to the customer it was identified as; revenue
        without a person id goes to its conversion's person (or is `unknown_conversion`)."""
        results = [(rec, validate(rec.value, self.limits, now_ms)) for rec in records]
        events = [r for _, r in results if isinstance(r, Event)]
        pairs = [(e.anonymous_id or "", e.customer_id or "") for e in events if e.type == "identify"]
        anonymous = sorted({e.anonymous_id for e in events if e.anonymous_id and not e.customer_id})
        orphans = sorted({e.conversion_id or "" for e in events if not e.person_id})
        mapped_to, known, owners = await self.store.routing(pairs, anonymous, orphans)
        claimed = iter(mapped_to)
        routed: list[tuple[RawRecord, Event | Rejection | Conflict]] = []
        for rec, r in results:
            if isinstance(r, Event):
                r = _routed(r, claimed, known, owners)
            routed.append((rec, r))
        return routed


@dataclass(frozen=True, slots=True)
class Conflict:
    """An identify for an anonymous id already mapped to another customer."""

    event: Event
    mapped_to: str


def _routed(
    event: Event, claimed: Iterator[str], known: dict[str, str], owners: dict[str, str]
) -> Event | Rejection | Conflict:
    if event.type == "identify":
        mapped_to = next(claimed)
        return event if mapped_to == event.customer_id else Conflict(event, mapped_to)
    if event.anonymous_id in known and not event.customer_id:
        return dataclasses.replace(event, person_id=known[event.anonymous_id])
    if not event.person_id:
        owner = owners.get(event.conversion_id or "")
        error = f"revenue for unknown conversion {event.conversion_id!r} (never seen, or past retention)"
        return (
            dataclasses.replace(event, person_id=owner) if owner else Rejection("unknown_conversion", error)
        )
    return event


@dataclass
class ModelKeeper:
    """The data-driven model snapshot this worker attributes with, refreshed from Redis path counts.

    Every worker computes the snapshot from the same counts, so all get the same id; the one
    whose store changes the current snapshot publishes it to `attribution.models`.
    """

    store: JourneyStore
    emitter: Emitter
    partitions: int
    markov_order: int = 1
    current: Snapshot | None = None

    async def refresh(self) -> Snapshot | None:
        stats = await self.store.path_stats(self.partitions)
        if not seen(stats):
            return self.current
        snapshot = await asyncio.to_thread(snapshots.build, stats, self.markov_order)
        doc = snapshot.doc()
        if await self.store.store_snapshot(snapshot.snapshot_id, dumps(doc)):
            await self.emitter.emit(model_messages(doc))
        self.current = snapshot
        return snapshot


@dataclass
class JourneyProcessor:
    """Applies batches of person-keyed events exactly once to Redis state."""

    store: JourneyStore
    emitter: Emitter
    config: Config
    metrics: Metrics
    models: ModelKeeper | None = None
    _clearing: asyncio.Future | None = field(default=None, init=False, repr=False)

    async def handle(self, records: Sequence[RawRecord]) -> None:
        by_person: dict[str, list[Positioned]] = {}
        partitions: dict[str, int] = {}
        max_ts: dict[int, int] = {}  # partition -> highest event ts of the batch (the watermark)
        controls: list[str] = []
        for rec in records:
            assert rec.key is not None and rec.value is not None
            pid = rec.key.decode()
            event = decode_event(rec.value)
            by_person.setdefault(pid, []).append(
                # every writer of the person-keyed topic writes encode_event(event): the value
                Positioned(f"{rec.topic}:{rec.partition}", rec.offset, event, rec.value)
            )
            partitions[pid] = rec.partition
            if event.type in CONTROL:
                controls.append(event.type)
            else:
                max_ts[rec.partition] = max(event.ts, max_ts.get(rec.partition, 0))
        count_labels(self.metrics.events_in, controls)
        results = await self._apply(by_person, partitions)
        outputs = {pid: r.outbox for pid, r in results.items()}
        replayed = await self.store.replayed_outputs(
            {pid: r.replayed for pid, r in results.items() if r.replayed}
        )
        for pid, outbox in replayed.items():
            outputs[pid] = {**outputs[pid], **outbox}
        persons = {pid: (partitions[pid], r) for pid, r in results.items()}
        # the path counts (fenced by offset) and the outputs are independent: both must be done
        # before the batch is acked, in either order; a retry applies neither twice
        await _all(
            self.store.add_aggregates(_partition_batches(records, partitions, max_ts, outputs), persons),
            self.emitter.emit(
                [m for o in outputs.values() for ms in o.values() for m in ms if m.topic != PATHS]
            ),
        )
        # delivered: a replay of these offsets has nothing left to re-emit. Dropping the entries
        # only saves memory (they expire anyway), so it does not hold up the next batch.
        self._clearing = asyncio.ensure_future(
            self._clear_outbox({pid: list(o) for pid, o in outputs.items() if o}, self._clearing)
        )
        self._observe(records, partitions, results)

    async def _clear_outbox(self, delivered: dict[str, list[int]], previous: asyncio.Future | None) -> None:
        if previous is not None:
            await previous  # one at a time
        try:
            await self.store.clear_outbox(delivered)
        except Exception as exc:  # harmless: the entries expire with the outbox TTL
            log.warning("dropping delivered outbox entries failed (%s: %s)", type(exc).__name__, exc)

    async def _apply(
        self, by_person: dict[str, list[Positioned]], partitions: dict[str, int]
    ) -> dict[str, StepResult]:
        """Load, step and store; persons refused by the fence are reloaded and redone."""
        results: dict[str, StepResult] = {}
        pending = list(by_person)
        snapshot = self.models.current if self.models else None
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            wanted = {
                pid: [
                    p.event.conversion_id or ""
                    for p in by_person[pid]
                    if p.event.type in ("revenue", "conversion")
                ]
                for pid in pending
            }
            others = {
                pid: [p.event.anonymous_id or "" for p in by_person[pid] if p.event.type == "identify"]
                for pid in pending
            }
            states = await self.store.load(
                pending,
                {pid: cids for pid, cids in wanted.items() if cids},
                {pid: anons for pid, anons in others.items() if anons},
            )
            batch = {pid: step(pid, states[pid], by_person[pid], self.config, snapshot) for pid in pending}
            refused = await self.store.save(batch, partitions)
            self.metrics.refused_writes.inc(len(refused))
            results.update({pid: r for pid, r in batch.items() if pid not in refused})
            pending = sorted(refused)
            if not pending:
                return results
        raise TransientError(f"fenced writes kept being refused for {len(pending)} persons")

    def _observe(
        self, records: Sequence[RawRecord], partitions: dict[str, int], results: dict[str, StepResult]
    ) -> None:
        m = self.metrics
        m.batch_size.labels("journeys").observe(len(records))
        m.replayed.inc(sum(len(r.replayed) for r in results.values()))
        m.duplicates.inc(sum(r.duplicates for r in results.values()))
        sent = {(rec.partition, rec.offset): rec.timestamp for rec in records}
        now = time.time()
        closed: list[str] = []
        for pid, result in results.items():
            for offset, msgs in result.outbox.items():
                for msg in msgs:
                    if msg.topic == CONVERSIONS:
                        m.attributions_out.inc()
                        m.latency_ms.observe(max(0.0, now - sent[(partitions[pid], offset)]) * 1000)
                    elif msg.topic == SESSIONS:
                        closed.append("idle" if b'"closed_by":"idle"' in msg.value else "next_session")
        count_labels(m.sessions_out, closed)


async def _all(*steps: Awaitable[None]) -> None:
    """Run the steps concurrently; the first failure cancels the others and propagates as is."""
    tasks = [asyncio.ensure_future(s) for s in steps]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def _partition_batches(
    records: Sequence[RawRecord],
    partitions: dict[str, int],
    max_ts: dict[int, int],
    outputs: dict[str, dict[int, list[Message]]],
) -> dict[int, PartitionBatch]:
    """Per partition: the batch's highest offset and event ts, and its path increments in offset order."""
    last: dict[int, int] = {}
    for rec in records:
        last[rec.partition] = max(rec.offset, last.get(rec.partition, -1))
    increments: dict[int, list[PathIncrement]] = {p: [] for p in last}
    for pid, outbox in outputs.items():
        for offset, messages in outbox.items():
            for msg in messages:
                if msg.topic == PATHS:
                    increments[partitions[pid]].append(PathIncrement(offset, *read_path_message(msg.value)))
    return {
        p: PartitionBatch(last[p], max_ts.get(p, 0), sorted(incs, key=lambda i: i.offset))
        for p, incs in increments.items()
    }


@dataclass
class Sweeper:
    """Asks idle sessions to close and old journeys to expire, on the partitions this worker owns.

    It changes no state itself: it publishes a `close_idle` (stamped with the wall clock) or
    `expire` (stamped with the partition's event-time watermark) event per due person on the
    person-keyed topic, which the journeys agent applies like any event — fenced, exactly
    once, replayable. Expiry follows event time, so a replay of old data expires journeys
    exactly as `touchstream attribute --events` does.
    """

    store: JourneyStore
    emitter: Emitter
    rules: Rules
    requested: dict[tuple[str, str], int] = field(default_factory=dict)

    async def sweep(self, partitions: Sequence[int], now_ms: int | None = None) -> int:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        due: list[tuple[str, str, int, int]] = []  # kind, person, its index score, event ts
        watermarks = await self.store.watermarks(partitions)
        for partition in partitions:
            for pid, last in await self.store.due(partition, "open", now_ms - self.rules.session_timeout_ms):
                due.append(("close_idle", pid, last, now_ms))
            watermark = watermarks.get(partition)
            if watermark is not None:
                before = watermark - self.rules.longest - EXPIRY_SLACK_MS - 1
                for pid, last in await self.store.due(partition, "active", before):
                    due.append(("expire", pid, last, watermark))
        # what was asked for is not asked again for a minute (the agent may be behind)
        self.requested = {k: t for k, t in self.requested.items() if now_ms - t <= 60_000}
        requests = []
        for kind, pid, last, ts in due:
            if (kind, pid) in self.requested:
                continue
            self.requested[kind, pid] = now_ms
            # the id names the journey state it targets, so a later journey of the person
            # is never mistaken for a duplicate of an earlier request
            event_id = f"{kind}:{pid}:{last}:{ts}"
            event = Event(event_id=event_id, type=kind, ts=ts, person_id=pid)  # type: ignore[arg-type]
            requests.append(Message(PERSONS, pid.encode(), encode_event(event)))
        await self.emitter.emit(requests)
        return len(requests)
