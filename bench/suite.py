"""The benchmark: one workload, one broker, one redis-server, every contender side by side.

    python -m bench.suite [--customers 20000] [--json bench-results.json]     (make bench)

The simulator's events (~10 per customer: interactions, conversions, a few identifies) are
published once to a raw topic of 4 partitions; then, one after the other on that same topic:

1. ceiling    a bare aiokafka consumer: getmany + orjson, one small produce per conversion
2. floor      an empty Faust agent: Faust's own per-event cost
3. naive      a Faust agent with one Redis GET and SET per event (the usual first version)
4. touchstream one `touchstream worker` process, full state (both agents)

Throughput of the Faust apps is read from their consumer group: events / (time the group
caught up − time it first committed), polling committed offsets every 0.2 s (they commit
every 0.2 s). Prints a table with the ratios and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream.infra import local_services
from stream.kafka_io import event_record, produce
from stream.runner import WorkerProcess
from stream.settings import Settings
from stream.simulate import generate
from stream.topics import RAW, ensure_topics, persons_topic

PARTITIONS = 4
END_MS = 1_790_000_000_000


def workload(customers: int, seed: int = 5) -> list[tuple[bytes | None, bytes]]:
    """The simulator's journeys plus an identify for one customer in a hundred."""
    rng = random.Random(seed)
    events = list(generate(customers, seed, END_MS))
    identifies = [
        {
            "event_id": f"id-{n}",
            "type": "identify",
            "ts": END_MS - 1000,
            "anonymous_id": f"a-{n}",
            "customer_id": f"c-{n}",
        }
        for n in rng.sample(range(customers), customers // 100)
    ]
    return [event_record(e) for e in events + identifies]


async def ceiling(bootstrap: str, topic: str, total: int) -> float:
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
                    doc = orjson.loads(msg.value)
                    if doc.get("type") == "conversion":
                        pending.append(await producer.send(f"{topic}.ceiling-out", b'{"ok":1}', key=msg.key))
            if len(pending) > 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return total / (time.monotonic() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def drained_rate(
    bootstrap: str, group: str, topics: list[str], total: int, timeout: float, hops: int = 1
) -> float:
    """Input events / (caught up − first commit), from the group's committed offsets over
    `topics` (`hops` committed offsets per input event: 2 for Touchstream's two agents)."""
    total *= hops
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        started = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                offsets = await admin.list_consumer_group_offsets(group)
            except KafkaError:  # the group does not exist yet
                offsets = {}
            done = sum(meta.offset for tp, meta in offsets.items() if tp.topic in topics and meta.offset > 0)
            now = time.monotonic()
            if done and started is None:
                started, at_start = now, done
            if done >= total:
                assert started is not None
                return (total - at_start) / hops / max(now - started, 1e-6)
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{group} did not catch up in {timeout}s")
    finally:
        await admin.close()


def run_app(kind: str, bootstrap: str, redis_url: str, topic: str, total: int, workdir: Path) -> float:
    group = f"bench-{kind}-{random.randrange(1 << 30)}"
    with (workdir / f"{kind}.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.apps",
                kind,
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--group",
                group,
                "--redis",
                redis_url,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        return asyncio.run(drained_rate(bootstrap, group, [topic], total, timeout=1800))
    finally:
        proc.terminate()
        proc.wait(60)


def run_touchstream(settings: Settings, total: int, workdir: Path) -> float:
    worker = WorkerProcess(settings, workdir / "touchstream.log").start()
    try:
        # both agents commit on the same group: raw offsets, then the person-keyed copies
        topics = [settings.topic(RAW), persons_topic(settings)]
        return asyncio.run(
            drained_rate(settings.kafka_bootstrap_servers, settings.app_id, topics, 2 * total, 1800)
        )
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="touchstream-bench-"))
    with local_services(workdir) as (bootstrap, redis_url):
        run = f"{random.randrange(16**6):06x}"
        settings = Settings.from_env(
            {},
            kafka_bootstrap_servers=bootstrap,
            redis_url=redis_url,
            app_id=f"bench-ts-{run}",
            topic_prefix=f"b{run}.",
            partitions=PARTITIONS,
            web_port=16090,
            commit_interval_ms=200,
            model_refresh_ms=3_600_000,
            log_level="info",
        )
        asyncio.run(ensure_topics(settings))
        records = workload(args.customers)
        topic = settings.topic(RAW)
        asyncio.run(produce(bootstrap, topic, records))
        total = len(records)
        print(f"workload: {total} events, {args.customers} customers, {PARTITIONS} partitions")
        results: dict[str, Any] = {"events": total, "customers": args.customers}
        results["ceiling"] = asyncio.run(ceiling(bootstrap, topic, total))
        results["floor"] = run_app("floor", bootstrap, redis_url, topic, total, workdir)
        results["naive"] = run_app("naive", bootstrap, redis_url, topic, total, workdir)
        results["touchstream"] = run_touchstream(settings, total, workdir)
    report(results)
    args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


def report(r: dict[str, Any]) -> None:
    print(f"{'contender':<14}{'events/s':>12}")
    for name in ("ceiling", "floor", "naive", "touchstream"):
        print(f"{name:<14}{r[name]:>12,.0f}")
    ts = r["touchstream"]
    ratios = {name: ts / r[name] for name in ("ceiling", "floor", "naive")}
    print("touchstream / " + "   ".join(f"{name} {ratio:.3f}" for name, ratio in ratios.items()))


if __name__ == "__main__":
    main()
