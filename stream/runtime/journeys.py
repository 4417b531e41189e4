"""Journeys: a batch of person-keyed events in, Redis state and outputs out.

`JourneyProcessor` applies a batch (the person-keyed topic's records and the raw events
applied where they were read, `stream.runtime.pipeline`): one Redis round trip to load
every person, the pure `step` per person, one pipeline of fenced writes, then the path
counts and the outputs (produced and awaited) before the batch is acked — at-least-once
output, exactly-once state (docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stream.adapters.kafka.emitter import Emitter
from stream.adapters.redis.aggregates import PartitionBatch, PartitionStore, PathIncrement
from stream.adapters.redis.persons import PersonStore
from stream.core.batch import step_batch
from stream.core.codec import decode_event
from stream.core.config import Config
from stream.core.control import CONTROL
from stream.core.counters import Count, counts_of
from stream.core.output import Message, read_path_message
from stream.core.person import Positioned, StepResult, split_position
from stream.core.records import Event, RawRecord
from stream.core.topics import CONVERSIONS, PATHS, REPORT, SESSIONS
from stream.errors import TransientError
from stream.runtime.metrics import Metrics, count_labels, observe_all
from stream.runtime.models import ModelKeeper
from stream.runtime.tasks import gather_all

log = logging.getLogger("touchstream.journeys")

MAX_WRITE_ATTEMPTS = 10
INTERNAL = (PATHS, REPORT)  # applied to Redis, never produced


@dataclass
class JourneyProcessor:
    """Applies batches of person-keyed events exactly once to Redis state."""

    store: PersonStore
    aggregates: PartitionStore
    emitter: Emitter
    config: Config
    metrics: Metrics
    models: ModelKeeper | None = None
    raw_topic: str = ""  # its events' path counts have a fence of their own
    _clearing: asyncio.Future | None = field(default=None, init=False, repr=False)

    async def handle(self, records: Sequence[RawRecord], homes: Mapping[str, int] | None = None) -> None:
        """Apply `records` (the person's id as key); `homes`: the home partition of each
        person some of whose records were read from the raw topic (for a person-keyed record,
        its partition is its person's home)."""
        homes = homes or {}
        by_person: dict[str, list[Positioned]] = {}
        partitions: dict[str, int] = {}
        controls: list[str] = []
        for rec in records:
            assert rec.key is not None
            pid = rec.key.decode()
            event = rec.decoded if rec.decoded is not None else decode_event(rec.value or b"")
            by_person.setdefault(pid, []).append(
                # every writer of the person-keyed topic writes encode_event(event): the value
                # (None for a raw event applied where it was read)
                Positioned(_source(rec), rec.offset, event, rec.value)
            )
            partitions[pid] = homes.get(pid, rec.partition)
            if event.type in CONTROL:
                controls.append(event.type)
        count_labels(self.metrics.events_in, controls)
        results = await self._apply(by_person, partitions)
        outputs: dict[str, dict[str, list[Message]]] = {pid: r.outbox for pid, r in results.items()}
        replayed = await self.store.replayed_outputs(
            {pid: r.replayed for pid, r in results.items() if r.replayed}
        )
        for pid, outbox in replayed.items():
            outputs[pid] = {**outputs[pid], **outbox}
        persons = {pid: (partitions[pid], r) for pid, r in results.items()}
        # the path counts (fenced by offset) and the outputs are independent: both must be done
        # before the batch is acked, in either order; a retry applies neither twice
        events = {p.position: p.event for items in by_person.values() for p in items}
        await gather_all(
            self.aggregates.add_aggregates(
                _partition_batches(records, outputs, events, self.raw_topic, self.config.currency), persons
            ),
            self.emitter.emit(
                [m for o in outputs.values() for ms in o.values() for m in ms if m.topic not in INTERNAL]
            ),
        )
        # delivered: a replay of these offsets has nothing left to re-emit. Dropping the entries
        # only saves memory (they expire anyway), so it does not hold up the next batch.
        self._clearing = asyncio.ensure_future(
            self._clear_outbox({pid: list(o) for pid, o in outputs.items() if o}, self._clearing)
        )
        self._observe(records, results)

    async def _clear_outbox(self, delivered: dict[str, list[str]], previous: asyncio.Future | None) -> None:
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
        lacking: dict[str, list[str]] = {}  # revised conversions whose stored record is wanted too
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            wanted = {
                pid: [
                    p.event.conversion_id or ""
                    for p in by_person[pid]
                    if p.event.type in ("revenue", "conversion")
                ]
                + lacking.get(pid, [])
                for pid in pending
            }
            others = {
                pid: [p.event.anonymous_id or "" for p in by_person[pid] if p.event.type == "identify"]
                for pid in pending
            }
            with self.metrics.redis_seconds.labels("load").time():
                states = await self.store.load(
                    pending,
                    {pid: cids for pid, cids in wanted.items() if cids},
                    {pid: anons for pid, anons in others.items() if anons},
                )
            batch = step_batch(states, {pid: by_person[pid] for pid in pending}, self.config, snapshot)
            missing = {
                pid: r.lacking for pid, r in batch.items() if set(r.lacking) - set(lacking.get(pid, ()))
            }
            if missing:  # a revision's report counters need the revision it replaces: load it, again
                lacking |= {pid: [*lacking.get(pid, ()), *cids] for pid, cids in missing.items()}
                continue
            with self.metrics.redis_seconds.labels("save").time():
                refused = await self.store.save(batch)
            self.metrics.refused_writes.inc(len(refused))
            results.update({pid: r for pid, r in batch.items() if pid not in refused})
            pending = sorted(refused)
            if not pending:
                return results
        raise TransientError(f"fenced writes kept being refused for {len(pending)} persons")

    def _observe(self, records: Sequence[RawRecord], results: dict[str, StepResult]) -> None:
        m = self.metrics
        m.batch_size.labels("journeys").observe(len(records))
        m.replayed.inc(sum(len(r.replayed) for r in results.values()))
        m.duplicates.inc(sum(r.duplicates for r in results.values()))
        m.approximated.inc(sum(r.approximated for r in results.values()))
        observe_all(m.lateness_seconds, [late / 1000 for r in results.values() for late in r.lateness_ms])
        converted: list[str] = []  # positions of the events that emitted an attribution
        closed: list[str] = []
        for result in results.values():
            for position, msgs in result.outbox.items():
                for msg in msgs:
                    if msg.topic == CONVERSIONS:
                        converted.append(position)
                    elif msg.topic == SESSIONS:
                        closed.append("idle" if b'"closed_by":"idle"' in msg.value else "next_session")
        count_labels(m.sessions_out, closed)
        if converted:
            m.attributions_out.inc(len(converted))
            sent = {(_source(rec), rec.offset): rec.timestamp for rec in records}
            now = time.time()
            for position in converted:
                m.latency_seconds.observe(max(0.0, now - sent[split_position(position)]))


def _partition_batches(
    records: Sequence[RawRecord],
    outputs: dict[str, dict[str, list[Message]]],
    events: Mapping[str, Event],
    raw_topic: str,
    currency: str,
) -> list[PartitionBatch]:
    """Per source `topic:partition`: the batch's highest offset, its path increments and its
    report counters in offset order, under that source's fence."""
    sources: dict[str, tuple[int, str]] = {}  # topic:partition -> (partition, fence)
    last: dict[str, int] = {}
    for rec in records:
        tp = _source(rec)
        sources[tp] = (rec.partition, "paths-fence:raw" if rec.topic == raw_topic else "paths-fence")
        last[tp] = max(rec.offset, last.get(tp, -1))
    increments: dict[str, list[PathIncrement]] = {tp: [] for tp in last}
    counts: dict[str, list[tuple[int, Count]]] = {tp: [] for tp in last}
    for outbox in outputs.values():
        for position, messages in outbox.items():
            tp, offset = split_position(position)
            for msg in messages:
                if msg.topic == PATHS:
                    increments[tp].append(PathIncrement(offset, *read_path_message(msg.value)))
            counts[tp] += [(offset, c) for c in counts_of(events[position], messages, currency)]
    return [
        PartitionBatch(
            *sources[tp], last[tp], sorted(incs, key=lambda i: i.offset), sorted(counts[tp], key=_first)
        )
        for tp, incs in increments.items()
    ]


def _first(item: tuple[int, Count]) -> int:
    return item[0]


def _source(rec: RawRecord) -> str:
    """The record's `topic:partition`, as the fences and outbox positions name it."""
    return f"{rec.topic}:{rec.partition}"
