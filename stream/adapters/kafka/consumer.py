"""Batch delivery: Faust's aiokafka consumer, handing whole fetched batches to the handlers.

Faust delivers one record at a time: its fetch loop awaits `wait_first(callback(message),
suspend_flow.wait())` per record (two tasks and an `asyncio.wait` each), then the record
goes through the conductor, a channel queue and the stream iterator before an agent sees
it. Touchstream's handlers work on batches anyway, so that per-record machinery was most
of the worker's time (bench/suite.py: an *empty* Faust agent tops out well below what one
Touchstream batch costs per event).

`BatchConsumer` keeps everything else of Faust's consumer — group membership, rebalancing,
flow control, offset tracking, gaps, commits — and replaces only the fetch loop: each
fetched record map is split into `RawRecord` lists per *subscription* (a handler and the
topics it reads together) and queued to one task per subscription, which awaits its
handler and then acks every offset of the batch (so Faust commits them). A handler that
fell behind gets everything queued meanwhile in one call (bigger batches cost less per
event, and nothing waits in the queue). Different subscriptions' handlers run
concurrently; one subscription's batches run in fetch order, so each partition is
processed in offset order.

A subscription may decode each value as it is fetched (the raw topic's decoder validates
it into an `Event`, whose event time is then known) and align all its partitions, of
every topic it reads, by event time (`alignment.py`): records a partition fetched ahead
of the others are held back, unacked, until the others catch up.

Rebalancing keeps Faust's contract: a batch counts as unacked from the moment it is queued
(so `wait_empty` at revocation waits for it), and queued batches of an older consumer
generation, or queued while the flow is suspended, are dropped without acking — they are
fetched again from the committed offsets; so are held records (a rebalance seeks every
assigned partition to its committed offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from stream.adapters.kafka.alignment import Aligner, merged
from stream.adapters.kafka.emitter import SOURCE_MS
from stream.adapters.kafka.producer import IdempotentProducer
from stream.core.records import RawRecord

BatchHandler = Callable[[list[RawRecord]], Awaitable[None]]
# (value, Kafka timestamp ms) -> (decoded, event time ms)
Decoder = Callable[[bytes | None, int], tuple[Any, int | None]]
QUEUED_BATCHES = 2  # per subscription: the fetch loop runs at most this far ahead of a handler


@dataclass(frozen=True, eq=False)
class Subscription:
    """How the records of one or more topics reach their handler: in one batch (each
    partition's in offset order, merged by event time across partitions), each topic's
    values decoded by its decoder or not, the partitions aligned by event time or not."""

    name: str
    handler: BatchHandler
    decoders: Mapping[str, Decoder | None]  # topic -> its decoder
    align: bool = False  # needs a decoder for every topic (event times)


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


_event_time: Callable[[RawRecord], int | None] = operator.attrgetter("event_ms")


def _merge_order(record: RawRecord) -> float:
    """Event time where the topic's decoder knows it, else the Kafka timestamp (ms)."""
    return record.event_ms if record.event_ms is not None else record.timestamp * 1000


def _raw_record(record: Any, decode: Decoder | None) -> RawRecord:
    """A fetched record; its timestamp is the `source_ms` header where the emitter set one
    (a copy on the person-keyed topic: when the raw record it copies was produced). A
    producer's own header of that name that is no number is ignored, never raised on."""
    decoded, event_ms = decode(record.value, record.timestamp) if decode else (None, None)
    timestamp = record.timestamp
    for name, value in record.headers or ():
        if name == SOURCE_MS and isinstance(value, bytes) and value.isdigit():
            timestamp = int(value)
    return RawRecord(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        timestamp / 1000,
        decoded,
        event_ms,
    )


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with batch delivery to `app.subscriptions` (topic → subscription)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._aligners: dict[Subscription, Aligner[TP, RawRecord]] = {}
        self._aligned_generation: int | None = None

    async def _drain_messages(self, fetcher: Any) -> None:  # Faust's fetch loop, replaced
        subscriptions: Mapping[str, Subscription] = self.app.subscriptions  # type: ignore[attr-defined]
        queues = {sub: asyncio.Queue[Batch](QUEUED_BATCHES) for sub in subscriptions.values()}
        delivering = {sub: asyncio.create_task(self._deliver(sub.handler, q)) for sub, q in queues.items()}
        tasks = list(delivering.values())
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._fetch(1.0)
                self.diag.unset_flag(CONSUMER_FETCHING)
                await asyncio.sleep(0)  # getmany may return at once, again and again
                for task in tasks:
                    if task.done():
                        task.result()  # a handler failed for good: raise it here
                if self.should_stop:
                    continue
                if not self.flow_active:
                    if records or self._holding():
                        self._forget()
                        await self._seek_committed()
                    continue
                runs = await self._split(records or {}, active, subscriptions)
                for sub, batch in self._batches(runs, subscriptions).items():
                    await self._enqueue(queues[sub], batch, delivering[sub])
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        finally:
            for task in tasks:
                task.cancel()
            for queue in queues.values():
                while not queue.empty():
                    self._drop(queue.get_nowait())

    async def _seek_committed(self) -> None:
        """Back to the committed offsets (what Faust's getmany does when paused: refetch
        later). A partition revoked meanwhile (a rebalance during the seek: aiokafka's
        IllegalStateError "No current assignment") needs nothing: the next assignment seeks
        every partition it gives to its committed offset anyway."""
        with contextlib.suppress(IllegalStateError):
            await self.perform_seek()

    async def _fetch(self, timeout: float) -> tuple[Mapping[TP, list[Any]], set[TP]]:
        """Faust's `_wait_next_records`, leaving out the partitions that hold enough records."""
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
        saturated = {tp for aligner in self._aligners.values() for tp in aligner.saturated()}
        active = self._get_active_partitions() - saturated
        if not active:  # (an empty set would fetch every partition)
            await self.sleep(0.05 if saturated else 1.0)
            return {}, active
        return await self._getmany(active_partitions=active, timeout=timeout), active

    def _batches(
        self, runs: dict[TP, list[RawRecord]], subscriptions: Mapping[str, Subscription]
    ) -> dict[Subscription, Batch]:
        """The records to hand on now, one batch per subscription: everything fetched, or for an
        aligned one what its aligner releases; each batch merged by event time across partitions."""
        generation = self.app.consumer_generation_id
        if self._aligned_generation != generation:
            self._forget()  # a rebalance: what was held is fetched again from the committed offsets
            self._aligned_generation = generation
        now_ms = int(time.time() * 1000)
        released: dict[TP, list[RawRecord]] = {}
        for tp, records in runs.items():
            sub = subscriptions[tp.topic]
            if sub.align:
                self._aligner(sub).add(tp, records)
            else:
                released[tp] = records
        for sub, aligner in self._aligners.items():
            behind = self._behind(sub)
            self.app.observe_alignment(sub.name, aligner.skew_ms(behind, now_ms), len(aligner.held))  # type: ignore[attr-defined]
            released.update(aligner.release(behind, now_ms))
        batches: dict[Subscription, Batch] = {}
        for tp, records in released.items():
            batch = batches.setdefault(subscriptions[tp.topic], Batch([], generation))
            batch.offsets[tp] = [r.offset for r in records]
            batch.records.extend(records)
        for batch in batches.values():
            if len(batch.offsets) > 1:
                batch.records = merged([released[tp] for tp in batch.offsets], _merge_order)
        return batches

    def _aligner(self, sub: Subscription) -> Aligner[TP, RawRecord]:
        if sub not in self._aligners:
            bound_ms, cap = self.app.alignment  # type: ignore[attr-defined]
            self._aligners[sub] = Aligner(_event_time, bound_ms, cap)
        return self._aligners[sub]

    def _holding(self) -> bool:
        return any(aligner.held for aligner in self._aligners.values())

    def _forget(self) -> None:
        for aligner in self._aligners.values():
            aligner.forget()

    def _behind(self, sub: Subscription) -> list[TP]:
        """The owned partitions of the subscription's topics with records left to fetch."""
        behind = []
        for tp in self.assignment():
            if tp.topic not in sub.decoders:
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

    async def _split(
        self,
        records: Mapping[TP, list[Any]],
        active: set[TP] | None,
        subscriptions: Mapping[str, Subscription],
    ) -> dict[TP, list[RawRecord]]:
        """The fetched records of each partition, decoded, skipping what was already read."""
        runs: dict[TP, list[RawRecord]] = {}
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
            decode = subscriptions[tp.topic].decoders[tp.topic]
            runs[tp] = [_raw_record(r, decode) for r in fresh]
        return runs

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
            self._mark_inbound(current)
            try:
                await handler([r for b in current for r in b.records])
            except BaseException:
                for batch in current:
                    self._drop(batch)
                raise
            for batch in current:
                self._ack(batch)
            commit_every = self._commit_every
            if commit_every is not None and self._n_acked >= commit_every:  # Faust's commit pacing
                self._n_acked = 0
                await self.commit()

    def _mark_inbound(self, batches: list[Batch]) -> None:
        """Tell Faust's monitor that these partitions' records reached their handler, as its
        stream iterator would: its stall check (the aiokafka driver's `verify_event_path`)
        otherwise logs `Stream has not started processing` for every partition behind."""
        inbound, now = self.app.monitor.stream_inbound_time, time.monotonic()
        for batch in batches:
            for tp in batch.offsets:
                inbound[tp] = now

    def _current(self, batch: Batch) -> bool:
        return batch.generation == self.app.consumer_generation_id and self.flow_active

    def _ack(self, batch: Batch) -> None:
        """Every offset of the batch is done: Faust's `ack` (under its lock, for topics with
        acks enabled), once per partition instead of per record."""
        with ack_lock:
            for tp, offsets in batch.offsets.items():
                if not self.app.topics.acks_enabled_for(tp.topic):
                    continue
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
    Producer = IdempotentProducer


class BatchApp(faust.App):
    """A Faust app whose consumer delivers batches to `subscriptions` instead of to agents.

    `alignment`: (bound in ms, records held per partition at most) for aligned subscriptions;
    `observe_alignment(subscription name, skew_ms, partitions_holding)` is called after every
    fetch."""

    subscriptions: dict[str, Subscription]

    def __init__(
        self,
        *args: Any,
        alignment: tuple[int, int] = (60_000, 5000),
        observe_alignment: Callable[[str, int, int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.subscriptions = {}
        self.alignment = alignment
        self.observe_alignment = observe_alignment or (lambda topic, skew_ms, holding: None)

    def batch_handler(
        self, *topics: tuple[faust.TopicT, Decoder | None], align: bool = False
    ) -> Callable[[BatchHandler], BatchHandler]:
        """Decorator: deliver the records of `topics` ((topic, decoder) pairs) to the function
        together, in fetched batches, each value decoded by its topic's decoder as fetched;
        `align`: hold partitions back to event-time order, across all of them."""
        if align and any(decode is None for _topic, decode in topics):
            raise ValueError("aligning a topic needs a decoder that gives event times")

        def register(handler: BatchHandler) -> BatchHandler:
            decoders = {name: decode for topic, decode in topics for name in topic.topics}
            sub = Subscription(handler.__name__, handler, decoders, align)
            for topic, _decode in topics:
                for name in topic.topics:
                    self.subscriptions[name] = sub
                self.topics.add(topic)  # the conductor subscribes the consumer to it
            return handler

        return register

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)
