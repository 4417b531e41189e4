"""Conversion -> attribution latency: one worker fed live at a fixed rate."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis import Redis

from bench.contenders import fresh, start_workers
from bench.measure import percentile
from bench.redis_nodes import RedisNodes
from stream.adapters.kafka.clients import Record
from stream.core.topics import CONVERSIONS, RAW
from stream.settings import Settings

WARMUP_S = 2.0  # conversions sent this early are not counted


def run_latency(
    base: Settings,
    records: list[Record],
    rate: float,
    seconds: float,
    workdir: Path,
    redis: Redis | RedisNodes,
) -> dict[str, Any]:
    """One worker, the workload published live at `rate` events/s for `seconds` (each event
    stamped with its send time, as a producer reporting interactions as they happen does; a
    backlog of historical timestamps would instead have the sweeper close every session at
    once): per conversion, the time from its produce call to the first
    `attribution.conversions` record for it (conversions sent in the first WARMUP_S are
    left out)."""
    settings = fresh(base, f"lat{int(rate)}")
    procs = start_workers(settings, workdir, redis)
    try:
        s = settings[0]
        sent, got = asyncio.run(publish_paced(s, records[: int(rate * seconds)], rate, seconds))
    finally:
        for w in procs:
            w.stop()
    latencies = [(got[c] - t) * 1000 for c, t in sent.items() if c in got]
    return {
        "rate": rate,
        "conversions": len(sent),
        "missing": len(sent) - len(latencies),
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "max_ms": max(latencies, default=None),
    }


async def publish_paced(
    settings: Settings, records: list[Record], rate: float, seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Publish `records` at `rate`, each stamped with its send time; read the conversions
    topic meanwhile. (conversion id -> time sent, attribution id -> time first read)."""
    bootstrap = settings.kafka_bootstrap_servers
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        settings.topic(CONVERSIONS), bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks="all")
    await consumer.start()
    await producer.start()

    async def read() -> None:
        while True:
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                for msg in messages:
                    got.setdefault(orjson.loads(msg.value)["attribution_id"], now)

    reader = asyncio.create_task(read())
    try:
        await _send_paced(producer, settings.topic(RAW), records, rate, sent)
        deadline = time.monotonic() + max(60.0, seconds)
        while time.monotonic() < deadline and not set(sent) <= set(got):
            await asyncio.sleep(0.2)
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
    return sent, got


async def _send_paced(
    producer: AIOKafkaProducer, topic: str, records: list[Record], rate: float, sent: dict[str, float]
) -> None:
    """Send `records` at `rate`, `ts` set to the send time; note each conversion's send time
    in `sent` once the warm-up is over."""
    started = time.monotonic()
    pending = []
    for i, (key, value) in enumerate(records):
        doc = orjson.loads(value)
        ahead = i / rate - (time.monotonic() - started)
        if ahead > 0.002:
            await asyncio.sleep(ahead)
        now = time.time()
        if doc["type"] == "conversion" and time.monotonic() - started >= WARMUP_S:
            sent[doc["event_id"]] = now
        live = orjson.dumps({**doc, "ts": int(now * 1000)})  # as it happens
        pending.append(await producer.send(topic, live, key=key))
        if len(pending) >= 1000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
