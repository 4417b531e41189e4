"""The contenders: a bare consumer (ceiling), two comparison Faust apps (floor, naive) and
Touchstream's own workers, each run on the benchmark's services and measured."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis import Redis

from bench.drain import drained_rate, publish_and_drain
from bench.measure import cpu_seconds, person_memory, topic_log_bytes
from bench.redis_nodes import RedisNodes
from bench.workload import PARTITIONS
from stream.adapters.kafka.clients import Record
from stream.adapters.kafka.topics import ensure_topics
from stream.adapters.redis.keys import Keys
from stream.devtools.runner import WorkerProcess
from stream.settings import Settings

SETTLE_S = 5.0  # after the workers are up: the group finishes rebalancing
PERSONS_SUFFIX = "-touchpoints.persons"  # the app's person-keyed topic: <prefix><app id>-touchpoints.persons


@dataclasses.dataclass(frozen=True)
class Stage:
    """What every Touchstream run shares: base settings, the workload, the services."""

    base: Settings
    records: list[Record]
    workdir: Path
    redis: RedisNodes
    kafka_data: Path | None  # the local broker's log dir: Kafka bytes are measured there


async def ceiling(bootstrap: str, topic: str, total: int) -> float:
    """A bare aiokafka consumer: getmany + orjson, one small produce per conversion."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        seen, pending = 0, []
        started = time.monotonic()
        while seen < total:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for msg in messages:
                    seen += 1
                    if orjson.loads(msg.value).get("type") == "conversion":
                        pending.append(await producer.send(f"{topic}.ceiling-out", b'{"ok":1}', key=msg.key))
            if len(pending) > 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return total / (time.monotonic() - started)
    finally:
        await consumer.stop()
        await producer.stop()


def run_app(kind: str, bootstrap: str, redis_url: str, topic: str, total: int, workdir: Path) -> float:
    """`bench.apps` floor or naive draining `topic`: events/s from its group's commits."""
    group = f"bench-{kind}-{random.randrange(1 << 30)}"
    argv = [sys.executable, "-m", "bench.apps", kind, "--bootstrap", bootstrap, "--topic", topic]
    with (workdir / f"{kind}.log").open("wb") as log:
        proc = subprocess.Popen(
            [*argv, "--group", group, "--redis", redis_url], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        return asyncio.run(drained_rate(bootstrap, group, [topic], total, timeout=1800))
    finally:
        proc.terminate()
        proc.wait(60)


def fresh(base: Settings, name: str, workers: int = 1) -> list[Settings]:
    """Settings of `workers` workers of a new app on new topics (distinct web ports)."""
    run = f"{name}-{random.randrange(16**6):06x}"
    common = {"app_id": f"bench-{run}", "topic_prefix": f"b-{run}."}
    return [
        dataclasses.replace(base, **common, web_port=base.web_port + i, worker_id=f"bench-{i}")
        for i in range(workers)
    ]


def base_settings(bootstrap: str, redis_url: str, web_port: int, **overrides: Any) -> Settings:
    """Worker settings for the benchmark's services: commits every 0.2 s (the rate is read
    from them), no model refresh during a run; `overrides` (a Redis Cluster's) win."""
    return Settings.from_env(
        {},
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        partitions=PARTITIONS,
        web_port=web_port,
        commit_interval_ms=200,
        model_refresh_ms=3_600_000,
        log_level="info",
        **overrides,
    )


def start_workers(settings: list[Settings], workdir: Path, redis: Redis | RedisNodes) -> list[WorkerProcess]:
    """Flush Redis, create the topics, start the workers and let the group settle."""
    redis.flushall()
    asyncio.run(ensure_topics(settings[0]))
    started = []
    try:
        for s in settings:
            started.append(WorkerProcess(s, workdir / f"{s.app_id}-{s.worker_id}.log").start())
    except BaseException:
        for w in started:
            w.stop()
        raise
    time.sleep(SETTLE_S)
    return started


def run_touchstream(stage: Stage, workers: int, memory: bool = False, **overrides: Any) -> dict[str, Any]:
    """N workers of a new app (settings `overrides` on the stage's); the workload is published
    once they are up. Events/s from the group's commits; CPU seconds of the workers, of the
    Redis primaries and of the replicas per 100k events; the topics' bytes on the broker's
    disk; and (memory=True) what Redis holds per person afterwards."""
    settings = fresh(dataclasses.replace(stage.base, **overrides), f"w{workers}", workers)
    procs = start_workers(settings, stage.workdir, stage.redis)
    try:
        pids = [w.proc.pid for w in procs if w.proc is not None]
        before = _cpu(pids, stage.redis)
        rate = publish_and_drain(settings[0], stage.records)
        spent = [b - a for a, b in zip(before, _cpu(pids, stage.redis), strict=True)]
        per_100k = 100_000 / len(stage.records)
        result: dict[str, Any] = {
            "workers": workers,
            "events_per_s": rate,
            "worker_cpu_s_per_100k": spent[0] * per_100k,
            "redis_cpu_s_per_100k": spent[1] * per_100k,
            "redis_replica_cpu_s_per_100k": spent[2] * per_100k,
            "redis_replicas": settings[0].replicas_to_wait,
        }
        if stage.kafka_data is not None:
            result["kafka_bytes"] = topic_bytes(stage.kafka_data, settings[0].topic_prefix)
        if memory:
            result["memory"] = person_memory(stage.redis.primaries, Keys(settings[0].redis_prefix))
    finally:
        for w in procs:
            w.stop()
    return result


def _cpu(pids: list[int], redis: RedisNodes) -> tuple[float, float, float]:
    """CPU seconds so far: the workers', the Redis primaries', the replicas'."""
    return sum(cpu_seconds(p) for p in pids), redis.cpu_seconds(), redis.replica_cpu_seconds()


def topic_bytes(data_dir: Path, prefix: str) -> dict[str, int]:
    """On-disk bytes of a run's topics, by name without the run's prefix (the person-keyed
    topic as `touchpoints.persons`)."""
    sizes = topic_log_bytes(data_dir, prefix)
    named = {name.removeprefix(prefix): size for name, size in sizes.items()}
    return {("touchpoints.persons" if n.endswith(PERSONS_SUFFIX) else n): size for n, size in named.items()}


def run_replicas(stage: Stage, counts: tuple[int, ...] = (0, 1)) -> list[dict[str, Any]]:
    """One worker on the Redis Cluster per `TOUCHSTREAM_REDIS_REPLICAS` count, one after the
    other on the same workload: what waiting for the replicas (Redis WAIT) costs."""
    return [run_touchstream(stage, 1, redis_replicas=n) for n in counts]
