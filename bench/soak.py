"""The soak benchmark: one worker for ten minutes at half its measured maximum rate (`make soak`,
not part of CI). Does the consumer lag stay bounded, and does memory stop growing once the
journeys reach a steady state?

    python -m bench.soak [--duration 600] [--interval 10] [--rate R] [--customers N] [--out DIR]

1. Starts Kafka and Redis locally (`stream.devtools.services`; KAFKA_BOOTSTRAP_SERVERS /
   REDIS_URL name existing ones instead) and one `touchstream worker`.
2. The maximum: a burst of `--burst` events (60,000: half a minute or so) of 2,000 customers
   (or `--customers`), published as fast as possible while the worker drains it; events/s =
   events / drain time, from the group's commits (first commit to caught up, as bench/suite.py
   measures). `--rate` skips this and soaks at that rate instead of half the maximum.
3. The soak: a new worker on new topics and a new Redis prefix (the burst's keys are deleted),
   fed at half the maximum for `--duration` seconds; every `--interval` seconds it samples
   the group's lag (end offsets minus committed offsets over the raw and the person-keyed
   topics), the worker's RSS (/proc VmRSS), Redis `INFO memory` used_memory and the p99 of
   `touchstream_latency_seconds` (conversion produced → attribution emitted) over the
   interval, from the difference of two snapshots of its buckets on the worker's /metrics.
4. Prints the least-squares slope of each series per minute over the samples after
   `--warmup` (a fifth of the duration by default), with a verdict: the lag is "growing" if
   its slope exceeds 1 % of the input rate, the others if theirs exceeds 1 % of their mean
   per minute (10 % over ten minutes); "falling" below minus that, "flat" in between. Writes
   soak.csv and soak.png (the four series) into `--out` (default .bench/soak-<time>/).

The workload is a bounded population that keeps coming back: 1.5 × rate customers by default,
50 visits in flight, each visit one simulator journey of a customer (~10 events), so a
customer comes back every ~15 s on average (`bench.soak_series.population`). Each event is
stamped with its send time, as a live producer does. For sessions to close and journeys to
expire within ten minutes, the soak's worker runs on a compressed clock (both runs use it):

    TOUCHSTREAM_SESSION_TIMEOUT_MS=5s    the sweeper closes a session idle 5 s (production: 30 min)
    TOUCHSTREAM_LOOKBACK_MS=20s          a customer back after more than 20 s starts a new journey
    TOUCHSTREAM_REDERIVE_MS=20s          (about a quarter of the visits); the journey expires first
    TOUCHSTREAM_RECENT_IDS=64            each person's remembered event ids, full after ~100 s
    TOUCHSTREAM_CONVERSION_TTL_MS=60s    stored conversion records (production: 730 days)
    TOUCHSTREAM_MAX_PATHS=500            distinct paths counted per partition (production: 10,000)
    TOUCHSTREAM_REPORT_MAX_COUNTERS=1500 report counters per partition and day (production: 100,000)
    TOUCHSTREAM_COMMIT_INTERVAL_MS=1s    the lag read off the commits is at most a second stale

Stored conversion records grow by design: each is kept for TOUCHSTREAM_CONVERSION_TTL_MS (730
days) for late revenue, about 850 B each (docs/performance.md), so Redis would grow for two
years. The soak keeps them 60 s instead: used_memory then includes a steady minute of them
(~rate × 5 % × 60 records), and growth left in it is something else. The path counts the
learned models read and the report counters grow by design too, up to their caps: nearly every
journey of the simulator's is a new path (random channels), so at the production caps they
would still be filling after ten minutes (~150 path-count and ~45 report fields a second at
1,000 events/s, about 3 MB a minute). The soak lowers the caps so that they are reached
within the warm-up; the CSV has their fields (`path_fields`, `report_fields`) and the
number of keys. The report counters keep one hash per partition and UTC day (kept 400 days):
a run across midnight starts a new day's. The p99 is interpolated inside the histogram's
buckets (…, 1, 2, 5, 10, 30 s), so it reads at most 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import importlib.util
import os
import random
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bench.measure import cpu_seconds
from bench.soak_series import (
    SERIES,
    Sample,
    cpu_line,
    csv_rows,
    fit,
    histogram_buckets,
    interval_quantile,
    population,
    progress_line,
    summary_lines,
)
from stream.adapters.kafka.clients import LagProbe, partitions_of, produce, raw_key
from stream.adapters.kafka.topics import ensure_topics, persons_topic
from stream.adapters.redis.keys import Keys
from stream.core.topics import RAW
from stream.devtools.process import free_ports
from stream.devtools.runner import WorkerProcess
from stream.devtools.services import local_services
from stream.settings import Settings, env_name

SETTLE_S = 5.0  # after the worker is up: the group finishes joining
ACTIVE = 50  # visits in flight
LATENCY = "touchstream_latency_seconds"
SOAK_SETTINGS: dict[str, Any] = {
    "partitions": 8,
    "commit_interval_ms": 1000,
    "session_timeout_ms": 5000,
    "lookback_ms": 20_000,
    "rederive_ms": 20_000,
    "recent_ids": 64,
    "conversion_ttl_ms": 60_000,
    "max_paths": 500,
    "report_max_counters": 1500,
    "log_level": "info",  # the runner waits for Faust's "Worker ready"
}


@dataclasses.dataclass
class Progress:
    sent: int = 0


async def live_records(events: Iterator[dict[str, Any]], count: int, progress: Progress) -> AsyncIterator:
    """`count` raw-topic records of `events`, each stamped with the time it is taken to be
    sent (the producer takes the next one when it sends)."""
    for _ in range(count):
        event = {**next(events), "ts": int(time.time() * 1000)}
        progress.sent += 1
        yield raw_key(event), orjson.dumps(event)


def new_run(base: Settings, name: str) -> Settings:
    """`base` for a new app: its own consumer group, topics and Redis prefix."""
    run = f"{name}-{random.randrange(16**6):06x}"
    return dataclasses.replace(
        base, app_id=f"soak-{run}", topic_prefix=f"soak-{run}.", redis_prefix=f"soak-{run}", worker_id=name
    )


def start_worker(settings: Settings, log: Path) -> WorkerProcess:
    asyncio.run(ensure_topics(settings))
    worker = WorkerProcess(settings, log).start(timeout=120)
    time.sleep(SETTLE_S)
    return worker


def forget(settings: Settings) -> int:
    """Delete a run's Redis keys (its prefix's); returns how many."""
    client = Redis.from_url(settings.redis_url)
    try:
        names = list(client.scan_iter(match=f"{settings.redis_prefix}:*", count=10_000))
        for i in range(0, len(names), 1000):
            client.unlink(*names[i : i + 1000])
        return len(names)
    finally:
        client.close()


async def drain(settings: Settings, events: Iterator[dict[str, Any]], total: int) -> tuple[float, float]:
    """Publish `total` events as fast as possible while the worker drains them: (events/s,
    seconds), from the first commit to caught up (committed to the end of the raw and the
    person-keyed topics), less what the first commit already held."""
    bootstrap, group = settings.kafka_bootstrap_servers, settings.app_id
    probe = LagProbe(bootstrap)
    await probe.start()
    records = live_records(events, total, Progress())
    producing = asyncio.create_task(produce(bootstrap, settings.topic(RAW), records))
    try:
        raw = await partitions_of(probe.admin, settings.topic(RAW))
        tps = raw + await partitions_of(probe.admin, persons_topic(settings))
        started: tuple[float, int] | None = None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            with contextlib.suppress(KafkaError):  # no commit yet
                offsets = await probe.admin.list_consumer_group_offsets(group, partitions=raw)
                done = sum(max(0, meta.offset) for meta in offsets.values())
                now = time.monotonic()
                if done and started is None:
                    started = now, done
                if (
                    started
                    and producing.done()
                    and done >= total
                    and not any((await probe.lag(group, tps)).values())
                ):
                    await producing
                    return (total - started[1]) / max(now - started[0], 1e-6), now - started[0]
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{group} did not drain {total} events in 1800 s")
    finally:
        producing.cancel()
        await asyncio.gather(producing, return_exceptions=True)
        await probe.stop()


@dataclasses.dataclass
class Probe:
    """What a sample reads: the group's lag, the worker's RSS and /metrics, Redis' memory."""

    settings: Settings
    pid: int
    lag: LagProbe
    redis: AsyncRedis
    tps: list[TopicPartition] = dataclasses.field(default_factory=list)
    buckets: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings, pid: int) -> Probe:
        probe = cls(
            settings, pid, LagProbe(settings.kafka_bootstrap_servers), AsyncRedis.from_url(settings.redis_url)
        )
        await probe.lag.start()
        for topic in (settings.topic(RAW), persons_topic(settings)):
            probe.tps += await partitions_of(probe.lag.admin, topic)
        probe.buckets = histogram_buckets(await asyncio.to_thread(probe.metrics), LATENCY)
        return probe

    async def close(self) -> None:
        await self.lag.stop()
        await self.redis.aclose()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.settings.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as page:
            return page.read().decode()

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    async def aggregates(self) -> tuple[int, int]:
        """Fields of the path counts and of today's report counters, over the partitions."""
        keys, day = Keys(self.settings.redis_prefix), datetime.now(UTC).date().isoformat()
        pipe = self.redis.pipeline(transaction=False)
        for p in range(self.settings.partitions):
            pipe.hlen(keys.partition(p, "paths"))
            pipe.hlen(keys.partition(p, f"report:{day}"))
        sizes = await pipe.execute()
        return sum(sizes[::2]), sum(sizes[1::2])

    async def sample(self, t_s: float, sent: int) -> Sample:
        lag = sum((await self.lag.lag(self.settings.app_id, self.tps)).values())
        memory = await self.redis.info("memory")
        keys = await self.redis.dbsize()
        paths, reports = await self.aggregates()
        buckets = histogram_buckets(await asyncio.to_thread(self.metrics), LATENCY)
        p99 = interval_quantile(0.99, self.buckets, buckets)
        conversions = int(buckets[-1][1] - dict(self.buckets).get(buckets[-1][0], 0.0)) if buckets else 0
        self.buckets = buckets
        return Sample(
            t_s=t_s,
            events_sent=sent,
            lag_records=lag,
            worker_rss_bytes=self.rss_bytes(),
            redis_used_memory_bytes=int(memory["used_memory"]),
            p99_latency_ms=None if p99 is None else p99 * 1000,
            conversions=conversions,
            redis_keys=keys,
            path_fields=paths,
            report_fields=reports,
            worker_cpu_s=cpu_seconds(self.pid),
            load_1m=os.getloadavg()[0],
        )


async def soak(settings: Settings, pid: int, args: argparse.Namespace, rate: float) -> list[Sample]:
    """Publish at `rate` for `args.duration` seconds, sampling every `args.interval`."""
    progress = Progress()
    events = population(args.customers, ACTIVE, args.seed)
    records = live_records(events, int(rate * args.duration), progress)
    probe = await Probe.open(settings, pid)
    try:
        samples = [await probe.sample(0.0, 0)]
        start = time.monotonic()
        bootstrap = settings.kafka_bootstrap_servers
        producing = asyncio.create_task(produce(bootstrap, settings.topic(RAW), records, rate))
        try:
            for k in range(1, int(args.duration // args.interval) + 1):
                await asyncio.sleep(max(0.0, start + k * args.interval - time.monotonic()))
                if producing.done():
                    producing.result()  # a producer that failed fails the soak
                samples.append(await probe.sample(time.monotonic() - start, progress.sent))
                print(progress_line(samples[-1]), flush=True)
        finally:
            producing.cancel()
            await asyncio.gather(producing, return_exceptions=True)
    finally:
        await probe.close()
    return samples


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of the soak (600)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples (10)")
    parser.add_argument(
        "--warmup", type=float, help="slopes from this many seconds on (a fifth of --duration)"
    )
    parser.add_argument("--rate", type=float, help="events/s of the soak; skips measuring the maximum")
    parser.add_argument("--customers", type=int, help="the population (1.5 x the soak's rate)")
    parser.add_argument("--burst", type=int, default=60_000, help="events of the maximum's burst (60,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="where soak.csv and soak.png go (.bench/soak-<time>/)")
    args = parser.parse_args()
    if importlib.util.find_spec("matplotlib") is None:
        parser.error(
            "the plot needs matplotlib: pip install -c constraints.txt -e '.[bench]' (make soak does)"
        )
    if args.duration < 2 * args.interval:
        parser.error("--duration must be at least two --interval")
    args.warmup = args.duration / 5 if args.warmup is None else args.warmup
    args.out = args.out or Path(".bench") / f"soak-{datetime.now():%Y%m%d-%H%M%S}"
    return args


def measure_max(base: Settings, args: argparse.Namespace) -> float:
    settings = new_run(base, "max")
    worker = start_worker(settings, args.out / "worker-max.log")
    try:
        customers = args.customers or 2000
        rate, seconds = asyncio.run(drain(settings, population(customers, ACTIVE, args.seed + 1), args.burst))
    finally:
        worker.stop()
        forget(settings)
    print(f"max rate: {rate:,.0f} events/s ({args.burst:,} events drained in {seconds:.1f} s)", flush=True)
    return rate


def run(base: Settings, args: argparse.Namespace) -> tuple[list[Sample], float]:
    """Measure the maximum (unless --rate), then soak at half of it: the samples and the rate."""
    rate = args.rate or measure_max(base, args) / 2
    args.customers = args.customers or max(ACTIVE * 2, round(rate * 1.5))
    print(
        f"soak: {rate:,.0f} events/s for {args.duration:.0f} s, one worker, {args.customers:,} customers "
        f"({ACTIVE} visits in flight), a sample every {args.interval:.0f} s",
        flush=True,
    )
    shown = (f"{env_name(k)}={v}" for k, v in SOAK_SETTINGS.items() if k != "log_level")
    print("worker: " + " ".join(shown), flush=True)
    settings = new_run(base, "soak")
    worker = start_worker(settings, args.out / "worker-soak.log")
    try:
        assert worker.proc is not None
        samples = asyncio.run(soak(settings, worker.proc.pid, args, rate))
    finally:
        worker.stop()
        forget(settings)
    return samples, rate


def report(samples: list[Sample], rate: float, args: argparse.Namespace) -> None:
    fits = [fit(samples, series, args.warmup, rate) for series in SERIES]
    last = samples[-1]
    conversions = sum(s.conversions for s in samples)
    sent = f"{last.events_sent:,} events ({last.events_sent / last.t_s:,.0f}/s)"
    print(f"\nsent {sent}, {conversions:,} conversions attributed")
    print(cpu_line(samples, os.cpu_count() or 1))
    print(f"slopes: least squares over the samples from {args.warmup:.0f} s to {samples[-1].t_s:.0f} s")
    print("\n".join(summary_lines(fits)))
    with (args.out / "soak.csv").open("w", newline="") as out:
        csv.writer(out).writerows(csv_rows(samples))
    from bench.soak_plot import plot  # matplotlib: the `bench` extra

    title = f"soak: one worker at {rate:,.0f} events/s, {args.customers:,} customers, {args.duration:.0f} s"
    plot(samples, fits, args.out / "soak.png", title)
    print(f"wrote {args.out / 'soak.csv'} and {args.out / 'soak.png'}")


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="touchstream-soak-") as tmp,  # Kafka data
        local_services(Path(tmp)) as (bootstrap, redis_url),
    ):
        [port] = free_ports(1)
        base = Settings.from_env(
            {}, kafka_bootstrap_servers=bootstrap, redis_url=redis_url, web_port=port, **SOAK_SETTINGS
        )
        samples, rate = run(base, args)
    report(samples, rate, args)


if __name__ == "__main__":
    main()
