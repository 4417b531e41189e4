"""The benchmark: one workload, one broker, one redis-server, every contender side by side.

    python -m bench.suite [--customers 20000] [--json bench-results.json]     (make bench)
    python -m bench.suite --only touchstream --workers 1     (one contender; see --help)

The simulator's events (~10 per customer: interactions, conversions, a few identifies) are
published once to a raw topic of 4 partitions; then, one after the other on that same topic:

1. ceiling    a bare aiokafka consumer: getmany + orjson, one small produce per conversion
2. floor      an empty Faust agent: Faust's own per-event cost
3. naive      a Faust agent with one Redis GET and SET per event (the usual first version)
4. touchstream one `touchstream worker` process, full state; then 2 and 4
5. credits-off one worker with TOUCHSTREAM_CREDIT_ROWS=off: what the flat credit rows cost
6. latency    conversion produced -> attribution consumed, at the maximum and half of it

Throughput of the Faust apps is read from their consumer group: events / (time the group
caught up − time it first committed), polling committed offsets every 0.2 s (they commit
every 0.2 s). Prints a table with the ratios and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
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
from redis import Redis

from bench.measure import cpu_seconds, percentile, person_memory, redis_cpu_seconds
from stream.adapters.kafka.clients import Record, event_record, produce
from stream.adapters.kafka.topics import ensure_topics, persons_topic
from stream.adapters.redis.keys import Keys
from stream.core.topics import RAW
from stream.devtools.runner import WorkerProcess
from stream.devtools.services import local_services
from stream.devtools.simulate import generate
from stream.settings import Settings

PARTITIONS = 8
SETTLE_S = 5.0  # after the workers are up: the group finishes rebalancing
WARMUP_S = 2.0  # latency: conversions sent this early are not counted
END_MS = 1_790_000_000_000
CONTENDERS = ("ceiling", "floor", "naive", "touchstream", "credits-off", "latency")


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
        started = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                offsets = await admin.list_consumer_group_offsets(group)
            except KafkaError:  # the group does not exist yet
                offsets = {}
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset > 0}
            done = sum(offset for tp, offset in committed.items() if tp.topic == topics[0])
            now = time.monotonic()
            if done and started is None:
                started, at_start = now, done
            if done >= total:
                assert started is not None
                behind = {tp: end for tp, end in (await ends.end_offsets(inner)).items() if end > 0}
                if all(committed.get(tp, 0) >= end for tp, end in behind.items()):
                    return (total - at_start) / max(now - started, 1e-6)
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{group} did not catch up in {timeout}s")
    finally:
        await ends.stop()
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


def fresh(base: Settings, name: str, workers: int = 1) -> list[Settings]:
    """Settings of `workers` workers of a new app on new topics (distinct web ports)."""
    run = f"{name}-{random.randrange(16**6):06x}"
    common = {"app_id": f"bench-{run}", "topic_prefix": f"b-{run}."}
    return [
        dataclasses.replace(base, **common, web_port=base.web_port + i, worker_id=f"bench-{i}")
        for i in range(workers)
    ]


def base_settings(bootstrap: str, redis_url: str, web_port: int) -> Settings:
    """Worker settings for the benchmark's services: commits every 0.2 s (the rate is read
    from them), no model refresh during a run."""
    return Settings.from_env(
        {},
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        partitions=PARTITIONS,
        web_port=web_port,
        commit_interval_ms=200,
        model_refresh_ms=3_600_000,
        log_level="info",
    )


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


def start_workers(settings: list[Settings], workdir: Path, redis: Redis) -> list[WorkerProcess]:
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


def run_touchstream(
    base: Settings,
    workers: int,
    records: list[Record],
    workdir: Path,
    redis: Redis,
    memory: bool = False,
) -> dict[str, Any]:
    """N workers of a new app; the workload is published once they are up. Events/s from the
    group's commits, CPU seconds of the workers and of redis-server per 100k
    events, and (memory=True) what Redis holds per person afterwards."""
    settings = fresh(base, f"w{workers}", workers)
    procs = start_workers(settings, workdir, redis)
    try:
        pids = [w.proc.pid for w in procs if w.proc is not None]
        cpu0, redis0 = sum(cpu_seconds(p) for p in pids), redis_cpu_seconds(redis)
        rate = publish_and_drain(settings[0], records)
        per_100k = 100_000 / len(records)
        result: dict[str, Any] = {
            "workers": workers,
            "events_per_s": rate,
            "worker_cpu_s_per_100k": (sum(cpu_seconds(p) for p in pids) - cpu0) * per_100k,
            "redis_cpu_s_per_100k": (redis_cpu_seconds(redis) - redis0) * per_100k,
        }
        if memory:
            result["memory"] = person_memory(redis, Keys(settings[0].redis_prefix))
    finally:
        for w in procs:
            w.stop()
    return result


def run_latency(
    base: Settings, records: list[Record], rate: float, seconds: float, workdir: Path, redis: Redis
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
    bootstrap = settings.kafka_bootstrap_servers
    docs = [orjson.loads(value) for _key, value in records]
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        settings.topic("attribution.conversions"),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
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
        started = time.monotonic()
        pending = []
        for i, ((key, _value), doc) in enumerate(zip(records, docs, strict=True)):
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0.002:
                await asyncio.sleep(ahead)
            now = time.time()
            if doc["type"] == "conversion" and time.monotonic() - started >= WARMUP_S:
                sent[doc["event_id"]] = now
            live = orjson.dumps({**doc, "ts": int(now * 1000)})  # as it happens
            pending.append(await producer.send(settings.topic(RAW), live, key=key))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        deadline = time.monotonic() + max(60.0, seconds)
        while time.monotonic() < deadline and not set(sent) <= set(got):
            await asyncio.sleep(0.2)
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
    return sent, got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts of the scale-out runs")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--latency-rates",
        default="",
        help="also measure latency at these fixed rates (events/s, comma separated)",
    )
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        help=f"measure only these, comma separated, of {','.join(CONTENDERS)}",
    )
    parser.add_argument(
        "--max-rate", type=float, help="latency without the touchstream run: its maximum rate (events/s)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="touchstream-bench-") as tmp:  # Kafka data: gigabytes
        workdir = Path(tmp)
        with local_services(workdir) as (bootstrap, redis_url):
            redis = Redis.from_url(redis_url)
            base = base_settings(bootstrap, redis_url, web_port=16090)
            records = workload(args.customers)
            total = len(records)
            print(
                f"workload: {total} events, {args.customers} customers, {PARTITIONS} partitions", flush=True
            )
            results: dict[str, Any] = {"events": total, "customers": args.customers, "cores": os.cpu_count()}
            only = set(args.only.split(","))
            if only & {"ceiling", "floor", "naive"}:
                (shared,) = fresh(base, "cmp")
                asyncio.run(ensure_topics(shared))
                topic = shared.topic(RAW)
                asyncio.run(produce(bootstrap, topic, records))
            if "ceiling" in only:
                results["ceiling"] = asyncio.run(ceiling(bootstrap, topic, total))
                print(f"ceiling {results['ceiling']:,.0f}/s", flush=True)
            for kind in ("floor", "naive"):
                if kind in only:
                    results[kind] = run_app(kind, bootstrap, redis_url, topic, total, workdir)
                    print(f"{kind} {results[kind]:,.0f}/s", flush=True)
            if "touchstream" in only:
                scale = []
                for n in (int(w) for w in args.workers.split(",")):
                    scale.append(run_touchstream(base, n, records, workdir, redis, memory=n == 1))
                    print(f"touchstream x{n}: {scale[-1]['events_per_s']:,.0f}/s", flush=True)
                results["scale_out"] = scale
                results["touchstream"] = scale[0]["events_per_s"]
            if "credits-off" in only:
                off = dataclasses.replace(base, credit_rows="off")
                results["credits_off"] = run_touchstream(off, 1, records, workdir, redis)
                print(f"credits off: {results['credits_off']['events_per_s']:,.0f}/s", flush=True)
            if "latency" in only:
                top = results.get("touchstream") or args.max_rate
                if not top:
                    parser.error("latency without touchstream needs --max-rate")
                results["latency"] = {
                    label: run_latency(base, records, rate, args.latency_seconds, workdir, redis)
                    for label, rate in (
                        ("max", top),
                        ("half", top / 2),
                        *((f"{r}/s", float(r)) for r in args.latency_rates.split(",") if r),
                    )
                }
        report(results)
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def report(r: dict[str, Any]) -> None:
    ts = r.get("touchstream")
    print(f"\n{'contender':<34}{'events/s':>10}")
    for name in ("ceiling", "floor", "naive"):
        if name in r:
            print(f"{name:<34}{r[name]:>10,.0f}")
    runs = [(f"touchstream, {run['workers']} worker(s)", run) for run in r.get("scale_out", [])]
    if "credits_off" in r:
        runs.append(("touchstream, credit rows off", r["credits_off"]))
    for label, run in runs:
        n = run["workers"]
        per_event_us = run["worker_cpu_s_per_100k"] * 10
        print(
            f"{label:<34}{run['events_per_s']:>10,.0f}"
            f"   per worker {run['events_per_s'] / n:,.0f}"
            f"   per core {run['events_per_s'] / min(n, r['cores']):,.0f}"
            f"   cpu us/event: worker {per_event_us:.0f},"
            f" redis {run['redis_cpu_s_per_100k'] * 10:.0f}"
        )
    if ts and any(name in r for name in ("ceiling", "floor", "naive")):
        others = [name for name in ("ceiling", "floor", "naive") if name in r]
        print("touchstream / " + "   ".join(f"{name} {ts / r[name]:.3f}" for name in others))
    for label, lat in r.get("latency", {}).items():
        print(
            f"latency at {label} rate ({lat['rate']:,.0f}/s): p50 {lat['p50_ms']:.0f} ms, "
            f"p99 {lat['p99_ms']:.0f} ms ({lat['conversions']} conversions, {lat['missing']} missing)"
        )
    if "scale_out" in r:
        mem = r["scale_out"][0]["memory"]
        ten = mem["by_touches"].get(10)
        print(
            f"redis per person: {mem['bytes_per_person']:,.0f} B all keys; "
            f"state of a 10-touch journey {ten:,.0f} B"
            if ten
            else "(no 10-touch journey)"
        )
        print("redis bytes by kind: " + ", ".join(f"{k} {v:,}" for k, v in mem["bytes_by_kind"].items()))
        records = mem["conversion_bytes_by_touches"]
        print(
            f"redis per stored conversion ({mem['conversions']:,}, MEMORY USAGE): "
            + ", ".join(f"{n} touches {b:,.0f} B" for n, b in records.items() if n in (1, 3, 5, 10, 20))
        )


if __name__ == "__main__":
    main()
