"""How fast a consumer group drains what is published: events/s from its commits."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream.adapters.kafka.clients import Record, produce
from stream.adapters.kafka.topics import persons_topic
from stream.core.topics import RAW
from stream.settings import Settings

POLL_S = 0.2  # the apps commit every 0.2 s


async def drained_rate(bootstrap: str, group: str, topics: list[str], total: int, timeout: float) -> float:
    """Input events / (caught up − first commit), from the group's committed offsets: caught
    up once they reach `total` on the first topic (the input) and the end of every other
    topic (what the app re-keyed to itself on the way)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    ends = AIOKafkaConsumer(bootstrap_servers=bootstrap)  # no group: end offsets only
    await admin.start()
    await ends.start()
    try:
        described = await admin.describe_topics(topics[1:])
        inner = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
        assert len({tp.topic for tp in inner}) == len(topics) - 1, described
        started, at_start = None, 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = await _committed(admin, group)
            done = sum(offset for tp, offset in committed.items() if tp.topic == topics[0])
            now = time.monotonic()
            if done and started is None:
                started, at_start = now, done
            if done >= total and started is not None:
                behind = {tp: end for tp, end in (await ends.end_offsets(inner)).items() if end > 0}
                if all(committed.get(tp, 0) >= end for tp, end in behind.items()):
                    return (total - at_start) / max(now - started, 1e-6)
            await asyncio.sleep(POLL_S)
        raise TimeoutError(f"{group} did not catch up in {timeout}s")
    finally:
        await ends.stop()
        await admin.close()


async def _committed(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets (none before the group exists)."""
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # the group does not exist yet
        return {}
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset > 0}


def publish_and_drain(settings: Settings, records: list[Record]) -> float:
    """Publish `records` to the app's raw topic while its workers drain them: events/s, from
    the group's commits (the raw topic's, and the person-keyed topic's to its end)."""
    bootstrap = settings.kafka_bootstrap_servers
    topics = [settings.topic(RAW), persons_topic(settings)]

    async def drive() -> float:
        producing = asyncio.create_task(produce(bootstrap, topics[0], records))
        rate = await drained_rate(bootstrap, settings.app_id, topics, len(records), 1800)
        await producing
        return rate

    return asyncio.run(drive())
