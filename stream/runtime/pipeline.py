"""The worker's one batch handler: raw events applied where they are read, one hop for most.

A worker reads partition P of `touchpoints.raw` and partition P of the person-keyed topic
together (the topics have the same partition count and key hash, so Faust's assignor
gives both to one worker), fetched into one batch merged by event time. A person's *home*
is the partition its id hashes to: producers key raw events by person, so a person's own
events arrive on its home's raw partition. A batch:

1. ingest (`stream.runtime.ingest`): validate and route the raw records (one Redis round
   trip); an event read from its person's home raw partition is applied by this batch, the
   rest is re-keyed to the person-keyed topic (produced with the DLQ and conflict records).
   Which way an event goes, and to which person, depends on the record and the partition
   it was read from, never on who owns what now nor on what a lookup found: a raw record
   read again after a crash or a rebalance goes the way it went the first time. (Were a
   record re-keyed once and applied where read the next time, the raw partition's
   path-count fence — moved past its offset by the first batch — would leave out the
   path counts and report counters of the one application that counts.);
2. journeys (`stream.runtime.journeys`): the applied raw events and the person-keyed
   records, in the batch's order, stepped and stored exactly once — the person fence
   keeps an offset per source `topic:partition`, so a replay of either is recognised;
3. the replication barrier (`stream.adapters.redis.replication`): with
   `TOUCHSTREAM_REDIS_REPLICAS` above 0, the batch's writes are on that many replicas of
   every primary before it is acked (a failover cannot then lose them);
4. only then the raw watermarks advance (an `expire` stamped with them is then queued
   behind every event they cover: applied, or on the person-keyed topic); the write runs
   in the background, in batch order, while the next batch goes on.

Step 1's produce and 2 are independent and run together; both are done before the
batch is acked, and a retry of the whole batch applies nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from stream.adapters.kafka.emitter import Emitter
from stream.adapters.redis.aggregates import PartitionStore
from stream.adapters.redis.replication import ReplicationBarrier
from stream.core.records import RawRecord
from stream.core.topics import PERSONS, RAW
from stream.runtime.ingest import Home, Ingestor
from stream.runtime.journeys import JourneyProcessor
from stream.runtime.tasks import gather_all

log = logging.getLogger("touchstream.pipeline")


@dataclass
class Pipeline:
    """Handles a batch of raw and person-keyed records (see the module docstring)."""

    ingestor: Ingestor
    processor: JourneyProcessor
    emitter: Emitter
    aggregates: PartitionStore
    raw_topic: str
    barrier: ReplicationBarrier | None = None  # a batch's writes on the replicas before its ack
    _warned: bool = False
    _advancing: asyncio.Future[None] | None = field(default=None, init=False, repr=False)

    async def handle(self, records: Sequence[RawRecord]) -> None:
        raw = [r for r in records if r.topic == self.raw_topic]
        routed = await self.ingestor.route(raw, await self._home())
        applied = iter(routed.applied)
        ordered = [next(applied) if r.topic == self.raw_topic else r for r in records]
        keyed = [r for r in ordered if r is not None]
        await gather_all(
            self.emitter.emit_stamped(routed.outgoing),
            self.processor.handle(keyed, routed.homes) if keyed else asyncio.sleep(0),
        )
        if self.barrier is not None:
            with self.processor.metrics.redis_seconds.labels("replicate").time():
                await self.barrier.wait()
        if routed.watermarks:
            # written once the batch is applied and produced, but not waited for: the next
            # batch need not wait for it, and a write lost to a crash or an outage only
            # leaves the watermark behind, which delays expiry
            self._advancing = asyncio.ensure_future(self._advance(routed.watermarks, self._advancing))
        if raw:
            self.ingestor.observe(routed, len(raw))

    async def _advance(self, watermarks: dict[int, int], previous: asyncio.Future[None] | None) -> None:
        if previous is not None:
            await previous  # one at a time, in batch order
        try:
            await self.aggregates.advance_watermarks(watermarks, int(time.time() * 1000))
        except Exception as exc:  # it stays where it was until a later batch's write goes through
            log.warning("raising the raw watermarks failed (%s: %s)", type(exc).__name__, exc)

    async def _home(self) -> Home:
        """A person's home partition when the raw partition an event was read from is its home
        (then the event is applied here), else None; None always when the topics are
        partitioned differently (then every event takes the person-keyed topic, as a warning
        says once)."""
        raw, persons = await self.emitter.partition_counts([RAW, PERSONS])
        if raw != persons:
            if not self._warned:
                log.warning(
                    "%s has %d partitions and the person-keyed topic %d: every event is re-keyed "
                    "through the person-keyed topic (give both the same count to apply most where read)",
                    self.raw_topic,
                    raw,
                    persons,
                )
                self._warned = True
            return lambda person_id, read_from: None
        partition_of = self.emitter.partition

        def home(person_id: str, read_from: int) -> int | None:
            partition = partition_of(person_id.encode(), persons)
            return partition if partition == read_from else None

        return home
