"""Producing a batch's outputs: one Kafka record batch per partition, every delivery awaited.

aiokafka's `send` costs a future, a partitioner call and an accumulator lookup per
record; a batch's outputs are known all at once, so `Emitter` builds one `BatchBuilder`
per topic-partition and submits it with `send_batch` (bench/suite.py measures the
difference as part of the worker's throughput). Partitions are chosen exactly as
aiokafka's default partitioner does (murmur2 of the key over all partitions; random for
no key), so the person-keyed topic is partitioned the same whoever writes it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from stream.core.output import Message
from stream.core.partitioning import key_hash

SOURCE_MS = "source_ms"  # header: when the record a message derives from was produced (epoch ms)
KEY_CACHE = 200_000  # keys whose murmur2 hash is remembered (a person's events repeat it)


class BatchProducer(Protocol):
    """The part of `aiokafka.AIOKafkaProducer` the emitter uses."""

    client: Any

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any: ...


class Emitter:
    """Produces `Message`s to their topics and waits until every one is acknowledged."""

    def __init__(
        self, producer: Callable[[], BatchProducer], topic_name: Callable[[str], str], worker_id: str
    ) -> None:
        self._producer = producer
        self.topic_name = topic_name
        self.worker_id = worker_id.encode()
        self._hashes: dict[bytes, int] = {}

    async def emit(self, messages: Sequence[Message]) -> None:
        """Produce `messages`."""
        await self.emit_stamped([(m, None) for m in messages])

    async def emit_stamped(self, stamped: Sequence[tuple[Message, float | None]]) -> None:
        """Produce each message, with the time its source record was produced (seconds, or
        None) in the header `source_ms` (not as the record timestamp: retention goes by that)."""
        if not stamped:
            return
        producer = self._producer()
        headers = [("worker", self.worker_id), ("emitted_at_ms", str(int(time.time() * 1000)).encode())]
        topics: dict[str, tuple[str, int]] = {}  # logical name -> (topic, partition count)
        builders: dict[tuple[str, int], Any] = {}
        futures = []
        for message, timestamp in stamped:
            named = topics.get(message.topic)
            if named is None:
                topic = self.topic_name(message.topic)
                named = topics[message.topic] = (topic, await self._partition_count(producer, topic))
            topic, count = named
            partition = self.partition(message.key, count)
            builder = builders.get((topic, partition))
            if builder is None:
                builder = builders[topic, partition] = producer.create_batch()
            own = headers if timestamp is None else [*headers, (SOURCE_MS, b"%d" % int(timestamp * 1000))]
            if builder.append(key=message.key, value=message.value, timestamp=None, headers=own) is None:
                # full: send it, start the next one
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                builder = builders[topic, partition] = producer.create_batch()
                if builder.append(key=message.key, value=message.value, timestamp=None, headers=own) is None:
                    raise ValueError(f"a {len(message.value)}-byte record exceeds the producer batch size")
        for (topic, partition), builder in builders.items():
            futures.append(await producer.send_batch(builder, topic, partition=partition))
        await asyncio.gather(*futures)

    def partition(self, key: bytes | None, count: int) -> int:
        """aiokafka's default partitioner: murmur2(key) over all partitions, random without a key."""
        if key is None:
            return random.randrange(count)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= KEY_CACHE:
                self._hashes.clear()
            hashed = self._hashes[key] = key_hash(key)
        return hashed % count

    async def partition_counts(self, topics: Sequence[str]) -> list[int]:
        """The partition count of each topic (logical names), from the producer's metadata."""
        producer = self._producer()
        return [await self._partition_count(producer, self.topic_name(topic)) for topic in topics]

    @staticmethod
    async def _partition_count(producer: BatchProducer, topic: str) -> int:
        await producer.client._wait_on_metadata(topic)
        return len(producer.client.cluster.partitions_for_topic(topic))
