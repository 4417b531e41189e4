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
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stream import journey as journeys
from stream.events import Limits, decode_event, encode_event, validate
from stream.metrics import Metrics
from stream.output import CONVERSIONS, SESSIONS, Message, dlq_message, session_message
from stream.person import Config, PersonState, Positioned, StepResult, step
from stream.records import Event
from stream.store import JourneyStore

MAX_WRITE_ATTEMPTS = 10


class Producer(Protocol):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """What the shells need of a Kafka record (Faust's `Message` has these attributes)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # seconds


class Emitter:
    """Produces `Message`s to their public topics and waits for every delivery."""

    def __init__(
        self, producer: Callable[[], Producer], topic_name: Callable[[str], str], worker_id: str
    ) -> None:
        self._producer = producer
        self.topic_name = topic_name
        self.worker_id = worker_id.encode()

    async def emit(self, messages: Sequence[Message], timestamp: float | None = None) -> None:
        headers = [("worker", self.worker_id), ("emitted_at_ms", str(int(time.time() * 1000)).encode())]
        futures = [
            await self.producer.send(self.topic_name(m.topic), m.key, m.value, None, timestamp, headers)
            for m in messages
        ]
        await asyncio.gather(*futures)

    @property
    def producer(self) -> Producer:
        return self._producer()


@dataclass
class Ingestor:
    """Validates `touchpoints.raw` and re-keys valid events by person."""

    emitter: Emitter
    persons_topic: str
    limits: Limits
    metrics: Metrics

    async def handle(self, records: Sequence[RawRecord]) -> None:
        now_ms = int(time.time() * 1000)
        dead: list[Message] = []
        futures = []
        for rec in records:
            result = validate(rec.value, self.limits, now_ms)
            if isinstance(result, Event):
                self.metrics.events_in.labels(result.type).inc()
                futures.append(
                    await self.emitter.producer.send(
                        self.persons_topic,
                        result.person_id.encode(),
                        encode_event(result),
                        None,
                        rec.timestamp,
                        None,
                    )
                )
            else:
                self.metrics.dlq.labels(result.reason_code).inc()
                dead.append(
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
        await asyncio.gather(*futures)
        if dead:
            await self.emitter.emit(dead)
        self.metrics.batch_size.labels("ingest").observe(len(records))


@dataclass
class JourneyProcessor:
    """Applies batches of person-keyed events exactly once to Redis state."""

    store: JourneyStore
    emitter: Emitter
    config: Config
    metrics: Metrics

    async def handle(self, records: Sequence[RawRecord]) -> None:
        by_person: dict[str, list[Positioned]] = {}
        partitions: dict[str, int] = {}
        for rec in records:
            assert rec.key is not None and rec.value is not None
            pid = rec.key.decode()
            by_person.setdefault(pid, []).append(
                Positioned(f"{rec.topic}:{rec.partition}", rec.offset, decode_event(rec.value))
            )
            partitions[pid] = rec.partition
        results = await self._apply(by_person, partitions)
        messages = [m for r in results.values() for msgs in r.outbox.values() for m in msgs]
        replays = {pid: r.replayed for pid, r in results.items() if r.replayed}
        messages += await self.store.replayed_outputs(replays)
        await self.emitter.emit(messages)
        self._observe(records, partitions, results)

    async def _apply(
        self, by_person: dict[str, list[Positioned]], partitions: dict[str, int]
    ) -> dict[str, StepResult]:
        """Load, step and store; persons refused by the fence are reloaded and redone."""
        results: dict[str, StepResult] = {}
        pending = list(by_person)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            states = await self.store.load(pending)
            batch = {pid: step(pid, states[pid], by_person[pid], self.config) for pid in pending}
            refused = await self.store.save(batch, partitions)
            self.metrics.refused_writes.inc(len(refused))
            results.update({pid: r for pid, r in batch.items() if pid not in refused})
            pending = sorted(refused)
            if not pending:
                return results
        raise RuntimeError(f"fenced writes kept being refused for {len(pending)} persons")

    def _observe(
        self, records: Sequence[RawRecord], partitions: dict[str, int], results: dict[str, StepResult]
    ) -> None:
        m = self.metrics
        m.batch_size.labels("journeys").observe(len(records))
        m.replayed.inc(sum(len(r.replayed) for r in results.values()))
        m.duplicates.inc(sum(r.duplicates for r in results.values()))
        sent = {(rec.partition, rec.offset): rec.timestamp for rec in records}
        now = time.time()
        for pid, result in results.items():
            for offset, msgs in result.outbox.items():
                for msg in msgs:
                    if msg.topic == CONVERSIONS:
                        m.attributions_out.inc()
                        m.latency_ms.observe(max(0.0, now - sent[(partitions[pid], offset)]) * 1000)
                    elif msg.topic == SESSIONS:
                        m.sessions_out.labels("next_session").inc()


@dataclass
class Sweeper:
    """Closes sessions idle past the timeout on the partitions this worker owns."""

    store: JourneyStore
    emitter: Emitter
    config: Config
    metrics: Metrics

    async def sweep(self, partitions: Sequence[int], now_ms: int | None = None) -> int:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        before = now_ms - self.config.rules.session_timeout_ms
        closed = 0
        for partition in partitions:
            candidates = await self.store.idle_candidates(partition, before)
            if candidates:
                closed += await self._close(partition, candidates, now_ms)
        return closed

    async def _close(self, partition: int, person_ids: list[str], now_ms: int) -> int:
        states = await self.store.load(person_ids)
        updated: dict[str, PersonState] = {}
        messages = []
        for pid, state in states.items():
            journey, closed = journeys.close_idle(state.journey, now_ms, self.config.rules)
            if closed is not None:
                updated[pid] = PersonState(journey, state.fence)
                messages.append(session_message(pid, closed))
        # at-least-once: emit before storing; a refused write means the session
        # went on and will be emitted again (same session_id) when it closes.
        await self.emitter.emit(messages)
        refused = await self.store.save_states(updated)
        done = [pid for pid, s in states.items() if not s.journey.session_open or pid in updated]
        await self.store.forget_open(partition, [pid for pid in done if pid not in refused])
        self.metrics.sessions_out.labels("idle").inc(len(messages))
        return len(messages)
