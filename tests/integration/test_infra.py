"""The local Kafka broker and redis-server really run, restart and stop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.devtools.kafka import KafkaBroker, start_kafka
from stream.devtools.redis import RedisServer, start_redis


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = start_kafka(tmp_path_factory.mktemp("kafka"))
    yield broker
    broker.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def _consume_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every value in partition 0 of `topic`, read from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=5000)
            values += [msg.value for msg in batch.get(tp, []) if msg.value is not None]
        return values
    finally:
        await consumer.stop()


def _gone(pid: int | None) -> bool:
    assert pid is not None
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_kafka_round_trip(broker: KafkaBroker) -> None:
    asyncio.run(_produce(broker.bootstrap, "infra-round-trip", b"hello"))
    assert asyncio.run(_consume_all(broker.bootstrap, "infra-round-trip")) == [b"hello"]


def test_kafka_restart_keeps_messages(broker: KafkaBroker) -> None:
    asyncio.run(_produce(broker.bootstrap, "infra-restart", b"before"))
    old_pid = broker.pid
    broker.restart()
    assert broker.pid != old_pid and _gone(old_pid)
    asyncio.run(_produce(broker.bootstrap, "infra-restart", b"after"))
    values = asyncio.run(_consume_all(broker.bootstrap, "infra-restart"))
    assert values == [b"before", b"after"]


def test_kafka_stop_leaves_no_process(tmp_path: Path) -> None:
    broker = start_kafka(tmp_path)
    broker.stop()
    assert _gone(broker.pid)
    broker.stop()  # idempotent


def test_redis_ping_set_get(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("touchstream:infra", b"value")
    assert client.get("touchstream:infra") == b"value"
    client.close()


def test_redis_appendonly_restart_keeps_data(tmp_path: Path) -> None:
    server = start_redis(tmp_path, appendonly=True)
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.stop()
    assert _gone(server.pid)
