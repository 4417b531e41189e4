"""Batch delivery: Faust's aiokafka consumer, handing whole fetched batches to the handlers.

Faust delivers one record at a time: its fetch loop awaits `wait_first(callback(message),
suspend_flow.wait())` per record (two tasks and an `asyncio.wait` each), then the record
goes through the conductor, a channel queue and the stream iterator before an agent sees
it. Touchstream's handlers work on batches anyway, so that per-record machinery was most
of the worker's time (bench/suite.py: an *empty* Faust agent tops out well below what one
Touchstream batch costs per event).

`BatchConsumer` keeps everything else of Faust's consumer — group membership, rebalancing,
flow control, offset tracking, gaps, commits — and replaces only the fetch loop: each
fetched record map is split by topic into `RawRecord` lists and queued to one task per
topic, which awaits its handler and then acks every offset of the batch (so Faust commits
them). A handler that fell behind gets everything queued meanwhile in one call (bigger
batches cost less per event, and nothing waits in the queue). The handlers of different
topics run concurrently; one topic's batches run in fetch order, so each partition is
processed in offset order.

Rebalancing keeps Faust's contract: a batch counts as unacked from the moment it is queued
(so `wait_empty` at revocation waits for it), and queued batches of an older consumer
generation, or queued while the flow is suspended, are dropped without acking — they are
fetched again from the committed offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.futures import notify

from stream.adapters.kafka.alignment import Positions, merged
from stream.core.records import RawRecord

BatchHandler = Callable[[list[RawRecord]], Awaitable[None]]
QUEUED_BATCHES = 2  # per topic: the fetch loop runs at most this far ahead of a handler


class InFlight:
    """Stands for a queued batch in Faust's set of unacked messages (`wait_empty` waits on it)."""

    __slots__ = ("__weakref__", "acked", "refcount")

    def __init__(self) -> None:
        self.acked = False
        self.refcount = 1


@dataclass
class Batch:
    records: list[RawRecord]
    generation: int
    offsets: dict[TP, list[int]] = field(default_factory=dict)
    in_flight: InFlight = field(default_factory=InFlight)


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with batch delivery to `app.batch_handlers` (topic → handler)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._positions: dict[str, Positions[TP]] = {}
        self._paced_generation: int | None = None

    async def _drain_messages(self, fetcher: Any) -> None:  # Faust's fetch loop, replaced
        handlers: Mapping[str, BatchHandler] = self.app.batch_handlers  # type: ignore[attr-defined]
        queues = {topic: asyncio.Queue[Batch](QUEUED_BATCHES) for topic in handlers}
        delivering = {t: asyncio.create_task(self._deliver(handlers[t], q)) for t, q in queues.items()}
        tasks = list(delivering.values())
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                self.diag.unset_flag(CONSUMER_FETCHING)
                await asyncio.sleep(0)  # getmany may return at once, again and again
                for task in tasks:
                    if task.done():
                        task.result()  # a handler failed for good: raise it here
                if self.should_stop:
                    continue
                if not self.flow_active:
                    if records:
                        await self.perform_seek()  # what Faust's getmany does: refetch later
                    continue
                batches = await self._split(records or {}, active)
                self._pace(batches)
                for topic, batch in batches.items():
                    await self._enqueue(queues[topic], batch, delivering[topic])
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        finally:
            for task in tasks:
                task.cancel()
            for queue in queues.values():
                while not queue.empty():
                    self._drop(queue.get_nowait())

    def _pace(self, batches: dict[str, Batch]) -> None:
        """Event-time order (alignment.py): each topic's batch merged by timestamp across its
        partitions, each partition's position noted and their spread reported."""
        generation = self.app.consumer_generation_id
        if self._paced_generation != generation:
            for positions in self._positions.values():
                positions.forget()
            self._paced_generation = generation
        for topic in self.app.batch_handlers:  # type: ignore[attr-defined]
            positions = self._positions.setdefault(topic, Positions())
            batch = batches.get(topic)
            if batch is not None:
                runs, at = [], 0  # `_split` appends each partition's records in one run
                for tp, offsets in batch.offsets.items():
                    runs.append(batch.records[at : at + len(offsets)])
                    positions.fetched(tp, runs[-1])
                    at += len(offsets)
                batch.records = merged(runs)
            self.app.observe_skew(topic, positions.skew_ms(self._behind(topic)))  # type: ignore[attr-defined]

    def _behind(self, topic: str) -> list[TP]:
        """The owned partitions of `topic` with records left to fetch."""
        behind = []
        for tp in self.assignment():
            if tp.topic != topic:
                continue
            end, read = self.highwater(tp), self._read_offset[tp]
            start = read + 1 if read is not None else (self._committed_offset[tp] or 0)
            if end is None or end > start:
                behind.append(tp)
        return behind

    async def _enqueue(self, queue: asyncio.Queue[Batch], batch: Batch, handler: asyncio.Task[None]) -> None:
        """Queue `batch` (unacked from now on), unless its handler failed meanwhile: then raise
        that failure (a full queue whose handler is gone would otherwise wait forever)."""
        self._unacked_messages.add(batch.in_flight)  # type: ignore[arg-type]
        put = asyncio.ensure_future(queue.put(batch))
        await asyncio.wait({put, handler}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            self._drop(batch)
            handler.result()

    async def _split(self, records: Mapping[TP, list[Any]], active: set[TP] | None) -> dict[str, Batch]:
        """The fetched records of each topic, as one batch, skipping what was already read."""
        generation = self.app.consumer_generation_id
        batches: dict[str, Batch] = {}
        for tp, recs in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            read = self._read_offset[tp]
            fresh = [r for r in recs if read is None or r.offset >= read]
            if not fresh:
                continue
            if read is not None and fresh[0].offset - read > 1:  # a gap (compaction, markers)
                await self._add_gap(tp, read + 1, fresh[0].offset)  # Faust's own bookkeeping
            self._read_offset[tp] = fresh[-1].offset
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            batch = batches.setdefault(tp.topic, Batch([], generation))
            batch.offsets[tp] = [r.offset for r in fresh]
            batch.records.extend(
                RawRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp / 1000) for r in fresh
            )
        return batches

    async def _deliver(self, handler: BatchHandler, queue: asyncio.Queue[Batch]) -> None:
        while True:
            batches = [await queue.get()]
            while not queue.empty():  # behind: what queued up meanwhile goes in the same call
                batches.append(queue.get_nowait())
            current = [b for b in batches if self._current(b)]
            for batch in batches:
                if batch not in current:
                    self._drop(batch)  # a rebalance came between fetch and here
            if not current:
                continue
            try:
                await handler([r for b in current for r in b.records])
            except BaseException:
                for batch in current:
                    self._drop(batch)
                raise
            for batch in current:
                self._ack(batch)

    def _current(self, batch: Batch) -> bool:
        return batch.generation == self.app.consumer_generation_id and self.flow_active

    def _ack(self, batch: Batch) -> None:
        """Every offset of the batch is done: Faust's `ack`, once per partition instead of per record."""
        for tp, offsets in batch.offsets.items():
            committed = self._committed_offset[tp]
            if committed is not None:
                offsets = [o for o in offsets if o >= committed]
            index = self._acked_index[tp]
            new = [o for o in offsets if o not in index]
            index.update(new)
            self._acked[tp].extend(new)
            self._n_acked += len(new)
        self._drop(batch)

    def _drop(self, batch: Batch) -> None:
        batch.in_flight.acked = True
        self._unacked_messages.discard(batch.in_flight)  # type: ignore[arg-type]
        notify(self._waiting_for_ack)


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer


class BatchApp(faust.App):
    """A Faust app whose consumer delivers batches to `batch_handlers` instead of to agents."""

    batch_handlers: dict[str, BatchHandler]

    def __init__(
        self,
        *args: Any,
        observe_skew: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.batch_handlers = {}
        self.observe_skew = observe_skew or (lambda topic, skew_ms: None)

    def batch_handler(self, topic: faust.TopicT) -> Callable[[BatchHandler], BatchHandler]:
        """Decorator: deliver `topic`'s records to the function in fetched batches."""

        def register(handler: BatchHandler) -> BatchHandler:
            for name in topic.topics:
                self.batch_handlers[name] = handler
            self.topics.add(topic)  # the conductor subscribes the consumer to it
            return handler

        return register

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)
