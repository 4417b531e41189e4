"""Kafka from a test: publish events, read a topic to its end, a consumer group's lag.

A `Target` is the worker's `Settings` (bootstrap servers and security options from it)
or a plain bootstrap address.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream.adapters.kafka.clients import Record, event_record, group_lag, partitions_of, produce
from stream.adapters.kafka.security import aiokafka_options
from stream.adapters.kafka.topics import ensure_topics, persons_topic
from stream.core.topics import RAW
from stream.settings import Settings
from tests.support.schemas import schema_of_topic, validate

Target = Settings | str


def connection(target: Target) -> tuple[str, dict[str, Any]]:
    """Bootstrap servers and aiokafka client options of `target`."""
    if isinstance(target, Settings):
        return target.kafka_bootstrap_servers, aiokafka_options(target)
    return target, {}


def create_topics(settings: Settings) -> None:
    """Every topic of these settings (public ones and the person-keyed one), as a worker would."""
    asyncio.run(ensure_topics(settings))


def publish(
    target: Target,
    topic: str,
    events: Iterable[dict[str, Any] | Record],
    *,
    rate: float | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> int:
    """Produce `events` to `topic` (acks=all) and return how many: event dicts keyed as the
    producers key them (customer, else anonymous id), `(key, value)` pairs as they are."""
    bootstrap, opts = connection(target)
    records = [e if isinstance(e, tuple) else event_record(e) for e in events]
    sending = produce(bootstrap, topic, records, rate=rate, options=opts if options is None else options)
    return asyncio.run(sending if timeout is None else asyncio.wait_for(sending, timeout))


class Publisher(threading.Thread):
    """`publish` in a thread of its own, paced at `rate` events per second: `share()` is the
    part of the input handed to the producer so far, `failure` what stopped it (if anything),
    `seconds` how long it took. A daemon thread: a failed test does not wait for it."""

    def __init__(self, target: Target, topic: str, events: list[dict[str, Any]], rate: float) -> None:
        super().__init__(daemon=True)
        self.target, self.topic, self.events, self.rate = target, topic, events, rate
        self.sent = 0
        self.failure: BaseException | None = None
        self.seconds = 0.0

    def share(self) -> float:
        return self.sent / len(self.events)

    def run(self) -> None:
        bootstrap, options = connection(self.target)
        started = time.monotonic()
        try:
            asyncio.run(produce(bootstrap, self.topic, self._records(), rate=self.rate, options=options))
        except BaseException as exc:  # the test asserts there was none
            self.failure = exc
        self.seconds = time.monotonic() - started

    def _records(self) -> Iterator[Record]:
        for event in self.events:
            yield event_record(event)
            self.sent += 1


def _consumer(bootstrap: str, options: Mapping[str, Any]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **options)


def read_all(target: Target, topic: str, timeout: float = 60) -> list[ConsumerRecord]:
    """Every record of `topic` up to its end offsets of now, ordered by partition and offset."""
    bootstrap, options = connection(target)

    async def run() -> list[ConsumerRecord]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
        await admin.start()
        try:
            tps = await partitions_of(admin, topic)
        finally:
            await admin.close()
        consumer = _consumer(bootstrap, options)
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found: list[ConsumerRecord] = []
            deadline = time.monotonic() + timeout
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic} not read to its end in {timeout:g} s")
                batch = await consumer.getmany(*tps, timeout_ms=1000)
                for tp, msgs in batch.items():
                    found += [m for m in msgs if m.offset < ends[tp]]
            return sorted(found, key=lambda m: (m.partition, m.offset))
        finally:
            await consumer.stop()

    return asyncio.run(run())


def values(target: Target, topic: str) -> list[dict[str, Any]]:
    """The values of a public topic up to its end (`read_all`), each one checked against
    the JSON Schema of its topic."""
    docs = [orjson.loads(m.value) for m in read_all(target, topic)]
    name = schema_of_topic(topic)
    for doc in docs:
        validate(name, doc)
    return docs


def by_attribution_id(records: Iterable[ConsumerRecord]) -> dict[str, set[bytes]]:
    """`attribution.conversions` records grouped by attribution id: every distinct value seen."""
    found: dict[str, set[bytes]] = {}
    for msg in records:
        found.setdefault(orjson.loads(msg.value)["attribution_id"], set()).add(msg.value)
    return found


def worker_inputs(settings: Settings) -> list[str]:
    """What a worker consumes, in pipeline order: the raw topic, then the person-keyed one."""
    return [settings.topic(RAW), persons_topic(settings)]


def lag(target: Target, group: str, topics: list[str]) -> int:
    """Records of `topics` past `group`'s committed offsets (see `clients.group_lag`)."""
    bootstrap, options = connection(target)
    return sum(asyncio.run(group_lag(bootstrap, group, topics, options)).values())


def rewind_group(target: Target, group: str, topics: list[str], partitions: int) -> None:
    """Commit offset 0 on every partition of `topics` for `group` (its workers are stopped)."""
    bootstrap, options = connection(target)

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **options
        )
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
            consumer.assign(tps)
            await consumer.commit({tp: 0 for tp in tps})
        finally:
            await consumer.stop()

    asyncio.run(run())
