"""Thin aiokafka helpers for the CLI (`produce`, `tail`, `simulate`), tests and benchmarks:
publish, follow or collect a topic, and a consumer group's lag."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Record = (
    tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, int | None]
)  # key, value[, ts ms]


class UnknownTopic(LookupError):
    """The topic, or the partition of it, asked for does not exist."""


def raw_key(event: Any) -> bytes | None:
    """The raw-topic key of an event: customer_id, else anonymous_id (docs/architecture.md). An
    identify is keyed by its customer, so it stays ordered with the customer's next
    conversion (identify, then purchase, credits the anonymous touches). A spend event is
    keyed `spend:<channel>`."""
    if not isinstance(event, dict):
        return None
    if event.get("type") == "spend" and isinstance(event.get("channel"), str):
        return f"spend:{event['channel']}".encode()
    key = event.get("customer_id") or event.get("anonymous_id")
    return key.encode() if isinstance(key, str) else None


def event_record(event: dict[str, Any]) -> Record:
    """Raw-topic record of an event dict, keyed by `raw_key`."""
    return raw_key(event), orjson.dumps(event)


def event_time_record(event: dict[str, Any]) -> Record:
    """Raw-topic record of an event dict whose Kafka timestamp is the event's `ts` (epoch ms),
    as a producer that sets the record timestamp to the event time publishes it."""
    ts = event.get("ts")
    return raw_key(event), orjson.dumps(event), ts if isinstance(ts, int) else None


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[Record] | AsyncIterable[Record],
    rate: float | None = None,
    chunk: int = 1000,
    options: Mapping[str, Any] | None = None,
) -> int:
    """Publish records (optionally paced to `rate` per second); returns how many were acked.

    `records` may be asynchronous (a pipe read without blocking the producer's sending);
    `options`: further aiokafka client arguments (security: `security.aiokafka_options`)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        acks="all",  # every in-sync replica holds a record before it counts as published
        enable_idempotence=True,  # a retry after a lost acknowledgement writes no duplicate
        **(options or {}),
    )
    sent = 0
    try:
        await producer.start()
        started = time.monotonic()
        pending = []
        async for key, value, *stamp in _aiter(records):
            timestamp = stamp[0] if stamp else None
            pending.append(await producer.send(topic, value=value, key=key, timestamp_ms=timestamp))
            sent += 1
            if len(pending) >= chunk:
                await asyncio.gather(*pending)
                pending.clear()
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0.01:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def _aiter(records: Iterable[Record] | AsyncIterable[Record]) -> AsyncIterator[Record]:
    if isinstance(records, AsyncIterable):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record


def _consumer(
    bootstrap: str, topic: str | None, from_beginning: bool, options: Mapping[str, Any] | None
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *([topic] if topic else []),
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        # a partition whose leader was not known yet when the client first asked (a topic just
        # created, a broker failing over) is looked up again within seconds, not 5 minutes
        metadata_max_age_ms=5000,
        **(options or {}),
    )


async def records(
    bootstrap: str,
    topic: str,
    *,
    from_beginning: bool = True,
    partition: int | None = None,
    until_end: bool = False,
    options: Mapping[str, Any] | None = None,
) -> AsyncIterator[ConsumerRecord]:
    """Yield a topic's records without a consumer group: every partition's, or `partition`'s,
    forever or (`until_end`) up to the end offsets read at the start, then stop.

    Partitions come out interleaved, each in offset order. The clients are closed on every
    way out (the broker unreachable at start: aiokafka's `KafkaConnectionError`). No such
    topic or partition: `UnknownTopic`. Close the iterator (`contextlib.aclosing`) to stop early."""
    tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic, partition, options)]
    consumer = _consumer(bootstrap, None, from_beginning, options)
    try:
        await consumer.start()
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps) if until_end else {}
        while not until_end or await _before(consumer, ends):
            batch = await consumer.getmany(*tps, timeout_ms=200, max_records=1000)
            for tp, msgs in batch.items():
                for msg in msgs:
                    if not until_end or msg.offset < ends[tp]:
                        yield msg
    finally:
        await consumer.stop()


async def topic_partitions(
    bootstrap: str, topic: str, partition: int | None = None, options: Mapping[str, Any] | None = None
) -> list[int]:
    """The partitions of `topic` (or [`partition`] when it has it), from the metadata of every
    topic: asking for all of them does not create this one on a broker that auto-creates
    topics. No such topic or partition: `UnknownTopic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(options or {}))
    try:
        await admin.start()
        metas = await admin.describe_topics()
    finally:
        await admin.close()
    known = sorted(p["partition"] for m in metas if m["topic"] == topic for p in m["partitions"])
    if not known:
        raise UnknownTopic(f"no topic {topic}")
    if partition is None:
        return known
    if partition not in known:
        raise UnknownTopic(f"topic {topic} has no partition {partition} (it has 0-{known[-1]})")
    return [partition]


async def _before(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    """Whether any partition's position is still before its end offset."""
    return any([await consumer.position(tp) < end for tp, end in ends.items()])


async def collect(
    bootstrap: str,
    topic: str,
    *,
    count: int | None = None,
    timeout: float = 60.0,
    settle: float = 2.0,
    options: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Read a topic from the beginning until `count` records arrived and then `settle`
    seconds more (to see extras), or (count None) until it stays idle for `settle`
    seconds; never past `timeout`. Records come back ordered by partition and offset."""
    consumer = _consumer(bootstrap, topic, True, options)
    await consumer.start()
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.monotonic()
            for msgs in batch.values():
                found += msgs
                quiet_since = now
            enough = count is None or len(found) >= count
            if enough and now - quiet_since >= settle:
                break
    finally:
        await consumer.stop()
    return sorted(found, key=lambda m: (m.partition, m.offset))


async def group_lag(
    bootstrap: str, group: str, topics: Iterable[str], options: Mapping[str, Any] | None = None
) -> dict[TopicPartition, int]:
    """Per partition of `topics`: records past consumer group `group`'s committed offset
    (no commit counts as offset 0), asked of the broker once (`LagProbe`)."""
    probe = LagProbe(bootstrap, options)
    await probe.start()
    try:
        tps = [tp for topic in topics for tp in await partitions_of(probe.admin, topic)]
        return await probe.lag(group, tps)
    finally:
        await probe.stop()


class LagProbe:
    """A consumer group's lag asked of the broker: its committed offsets (the group
    coordinator's) against the partitions' end offsets, with clients of its own, so that it
    measures while the group's consumer is stuck or not fetching."""

    def __init__(self, bootstrap: str, options: Mapping[str, Any] | None = None) -> None:
        options = options or {}
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **options
        )

    async def start(self) -> None:
        """Start both clients; a failure or a cancellation (the worker stopping) midway
        closes both, so that neither is left to warn "Unclosed" when collected."""
        try:
            await self.admin.start()
            await self.consumer.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self.admin.close()

    async def lag(self, group: str, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Records past the committed offset per partition (no commit counts as offset 0).
        The committed offsets are read before the end offsets: 0 everywhere means that every
        record the partitions held when their ends were read had been committed."""
        tps = list(tps)
        committed = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        ends = await self.consumer.end_offsets(tps) if tps else {}
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        return {tp: max(0, ends[tp] - done.get(tp, 0)) for tp in tps}


async def partitions_of(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    """The partitions of an existing topic (`LookupError` if there is no such topic)."""
    [meta] = await admin.describe_topics([topic])
    if meta["error_code"] or not meta["partitions"]:
        raise LookupError(f"no topic {topic} (error code {meta['error_code']})")
    return [
        TopicPartition(topic, p["partition"])
        for p in sorted(meta["partitions"], key=lambda p: p["partition"])
    ]
