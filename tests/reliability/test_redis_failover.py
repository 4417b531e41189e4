"""Nothing lost, nothing counted twice when a Redis Cluster primary crashes under the workers.

Two real `touchstream worker` processes on the session's Kafka broker and its Redis Cluster
(3 primaries, 3 replicas, AOF; `redis_cluster` of tests/conftest.py). A seeded stream of
~4,800 events — the simulator's customers and persons who start anonymous and continue
logged in, published with the usual small swaps — flows over 4 partitions. Twice, while
events are being published and the workers' applied count is rising (a batch's pipeline
in flight), the test SIGKILLs the primary holding the most keys: its replica is promoted,
the workers see the failover (their batches fail as transient and are retried, counted in
`touchstream_retries_total`), then the old primary is started again and rejoins as a
replica. With the replication barrier (TOUCHSTREAM_REDIS_REPLICAS, 1 on a cluster) a
worker stalls until the promoted primary has a replica again: no batch is acked to Kafka
before its writes are on a replica. After the stream drains, everything is compared with
the batch oracle as the chaos test does (tests/reliability/compare.py).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import random
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from stream.core.config import DAY_MS
from stream.core.topics import RAW
from stream.devtools import devices
from stream.devtools.redis import LocalRedisCluster
from stream.devtools.runner import WorkerProcess, metric
from stream.devtools.simulate import generate
from stream.settings import Settings
from tests.reliability.compare import applied_by, oracle, settle
from tests.support import redis_target
from tests.support.events import END_MS
from tests.support.kafka import Publisher, create_topics
from tests.support.redis_failover import PrimaryCrash, busiest_primary
from tests.support.settings import free_port, run_settings
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]

SEED = 20_261_125
PARTITIONS = 4
RATE = 75.0  # events per second: ~65 s of publishing, both failovers (~15 s each) within it
KILLS_AT = (0.2, 0.6)  # shares of the input applied when a primary is killed
SHORTFALL = "Redis replication: fewer than"  # the barrier's retried error, as the worker logs it
RETRIES = 'touchstream_retries_total{operation="journeys"}'
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[(\w+)\] (.*)$")


def failover_events(end_ms: int) -> list[dict]:
    """The simulator's customers and multi-device persons, in publication order."""
    customers = list(generate(400, seed=SEED, end_ms=end_ms, span_ms=120 * DAY_MS))
    persons = devices.persons(40, seed=SEED, start_ms=end_ms - 90 * DAY_MS)
    merged = sorted(customers + persons, key=lambda e: (e["ts"], e["event_id"]))
    return devices.publication_order(merged, seed=SEED)


@dataclasses.dataclass
class Workers:
    """The workers of the run, and whether one died without being stopped."""

    procs: list[WorkerProcess]
    total: int  # events in the input
    crashes: int = 0  # a worker died by itself (started again by `watchdog`)

    def applied(self) -> float:
        return sum(applied_by(w) for w in self.procs)

    def progress(self) -> float:
        return self.applied() / self.total

    def metric(self, name: str) -> float:
        """The sum of a metric over the running workers."""
        total = 0.0
        for worker in self.procs:
            with contextlib.suppress(OSError):  # a worker starting again answers nothing yet
                total += metric(worker.settings, name) if worker.proc and worker.proc.poll() is None else 0
        return total

    def retries(self) -> float:
        return self.metric(RETRIES)

    def logged(self, text: str) -> int:
        """How often the workers' logs say `text`."""
        return sum(w.output().count(text) for w in self.procs)

    def watchdog(self) -> None:
        for worker in self.procs:
            if worker.proc is not None and worker.proc.poll() is not None:
                self.crashes += 1
                worker.start(timeout=120)


@dataclasses.dataclass
class Failover:
    """One primary killed under the workers, and what they saw."""

    crash: PrimaryCrash
    share: float = 0.0  # of the input applied at the kill
    published: float = 0.0  # of the input published at the kill
    applying: bool = False  # the applied count rose just before the kill
    seen_s: float = 0.0  # kill -> the workers' retries rose
    held_s: float = 0.0  # kill -> the barrier held a batch back (the promoted primary had no replica)
    resumed_s: float = 0.0  # kill -> the workers' applied count rose after the old primary rejoined

    def describe(self) -> str:
        held = f", the replication barrier held a batch back at {self.held_s:.1f}s" if self.held_s else ""
        return (
            f"at {self.share:.0%} applied ({self.published:.0%} published, applied count rising: "
            f"{self.applying}): {self.crash.describe()}; the workers' retries rose {self.seen_s:.1f}s after "
            f"the kill{held}; they applied again {self.resumed_s:.1f}s after the kill"
        )


def fail_over(workers: Workers, crash: PrimaryCrash, publisher: Publisher, at: float) -> Failover:
    """Once `at` of the input is applied, SIGKILL the busiest primary right after the workers
    applied a batch (the next one's pipeline in flight); wait until the workers retry and the
    replica is promoted; with the replication barrier on, leave the promoted primary without a
    replica until the barrier held a batch back (the worker logs the shortfall); then restart
    the old primary and wait until it is a replica in sync and the workers apply again."""
    with contextlib.suppress(TimeoutError):  # past the deadline the kill comes now
        wait_until(lambda: workers.progress() >= at, 240, f"{at:.0%} applied", interval=0.1)
    workers.watchdog()
    failover = Failover(crash)
    victim, before = busiest_primary(crash.cluster), workers.applied()
    with contextlib.suppress(TimeoutError):
        failover.applying = wait_until(lambda: workers.applied() > before, 60, "the workers applying", 0.02)
    retries = workers.retries()
    failover.share, failover.published = workers.progress(), publisher.share()
    crash.kill(victim)
    with ThreadPoolExecutor(1) as pool:
        promoted = pool.submit(crash.wait_promoted)
        wait_until(lambda: workers.retries() > retries, 60, "the workers retrying", 0.05)
        failover.seen_s = time.monotonic() - crash.killed_at
        promoted.result()
    if workers.procs[0].settings.replicas_to_wait:  # the barrier: no batch acked without a replica
        shortfalls = workers.logged(SHORTFALL)
        wait_until(lambda: workers.logged(SHORTFALL) > shortfalls, 60, "the barrier holding batches", 0.2)
        failover.held_s = time.monotonic() - crash.killed_at
    crash.restart()
    crash.wait_rejoined()
    applied = workers.applied()
    wait_until(lambda: workers.applied() > applied, 60, "the workers applying again", 0.1)
    failover.resumed_s = time.monotonic() - crash.killed_at
    return failover


def stalls(log: str) -> list[tuple[float, int]]:
    """(seconds, retries) of each stall of the journeys handler a worker's log shows: from
    its first `journeys failed` line to `journeys recovered after N retries`."""
    found: list[tuple[float, int]] = []
    first: float | None = None
    for line in log.splitlines():
        m = LOG_LINE.match(line)
        if m is None:
            continue
        at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        recovered = re.match(r"journeys recovered after (\d+) retries", m[3])
        if m[3].startswith("journeys failed") and first is None:
            first = at
        elif recovered and first is not None:
            found.append((at - first, int(recovered[1])))
            first = None
    return found


def causes(log: str) -> collections.Counter[str]:
    """What the journeys handler's retries failed on, by exception type and its first words."""
    found = re.findall(r"journeys failed \((\w+): ([^;(]{0,60})", log)
    return collections.Counter(f"{kind}: {re.sub(r'[0-9]+', 'N', text).strip()}" for kind, text in found)


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "[ERROR]" in line or "Traceback" in line]


@pytest.fixture
def failover_settings(services: tuple[str, str], redis_cluster: LocalRedisCluster) -> Settings:
    """A run of its own (consumer group, topics) on the session's broker and Redis Cluster,
    the cluster emptied first."""
    settings = run_settings(
        services[0],
        redis_cluster.seeds,
        f"failover-{random.randrange(16**6):06x}",
        redis_cluster=True,
        redis_prefix=redis_target.CLUSTER_PREFIX,
        partitions=PARTITIONS,
        batch_size=200,
        lookback_ms=30 * DAY_MS,
        sweep_interval_ms=1000,
        model_refresh_ms=3_600_000,
        kafka_session_timeout_ms=6000,
    )
    with redis_target.client(settings) as client:
        client.flushdb()
    return settings


@pytest.fixture
def workers(
    failover_settings: Settings, redis_cluster: LocalRedisCluster, tmp_path: Path
) -> Iterator[Callable[[int], Workers]]:
    """`workers(total)`: two started workers; both stopped at the end, and every node of the
    session's cluster running and the cluster whole again, whatever happened."""
    made: list[Workers] = []

    def start(total: int) -> Workers:
        create_topics(failover_settings)
        procs = [
            WorkerProcess(
                dataclasses.replace(failover_settings, worker_id=name, web_port=free_port()),
                tmp_path / f"{name}.log",
            )
            for name in ("main", "second")
        ]
        made.append(Workers(procs, total))
        for proc in procs:
            proc.start(timeout=120)
        return made[-1]

    try:
        yield start
    finally:
        for fleet in made:
            for proc in fleet.procs:
                proc.stop()
        for index, node in enumerate(redis_cluster.nodes):
            if node.pid is None:
                redis_cluster.restart(index)
        redis_cluster.wait_ok()


def test_a_redis_primary_crash_under_the_workers_loses_nothing(
    failover_settings, workers, redis_cluster, report
) -> None:
    began = time.monotonic()
    settings = failover_settings
    events = failover_events(END_MS)
    expected = oracle(settings, events, int(time.time() * 1000) + 3_600_000)
    fleet = workers(len(events))
    publisher = Publisher(settings, settings.topic(RAW), events, RATE)
    publisher.start()
    failovers = [fail_over(fleet, PrimaryCrash(redis_cluster), publisher, at) for at in KILLS_AT]
    publisher.join()
    published = time.monotonic()
    seen, off, examples = settle(settings, expected, fleet.watchdog)
    exact = time.monotonic()
    retries = {w.settings.worker_id: metric(w.settings, RETRIES) for w in fleet.procs}
    client_retries = fleet.metric("touchstream_redis_client_retries_total")
    for proc in fleet.procs:
        proc.stop()
    replicas = "auto" if settings.redis_replicas is None else settings.redis_replicas
    for line in [
        f"{len(events)} events over {PARTITIONS} partitions at {RATE:.0f}/s, {len(expected.conversions)} "
        "conversions; 2 workers on a Redis Cluster of 3 primaries + 3 replicas (AOF); "
        f"TOUCHSTREAM_REDIS_REPLICAS {replicas} (waits for {settings.replicas_to_wait} replica), "
        f"replica timeout {settings.redis_replica_timeout_ms} ms",
        *(f"failover {i}: {f.describe()}" for i, f in enumerate(failovers, 1)),
        *figures(seen, off, retries, client_retries, {w.settings.worker_id: w.output() for w in fleet.procs}),
        f"worker crashes {fleet.crashes}; published in {publisher.seconds:.0f}s, equal to the oracle "
        f"{exact - published:.0f}s after the last event was published; the test took "
        f"{time.monotonic() - began:.0f}s",
        *(f"differs: {example}" for example in examples),
    ]:
        report(f"redis failover: {line}"[:2000])
    assert publisher.failure is None
    assert off == dict.fromkeys(off, 0)
    assert fleet.crashes == 0
    assert all(f.published < 1 and f.applying for f in failovers), "every kill came mid-stream"
    assert [f.crash.rejoined_as for f in failovers] == ["slave"] * len(failovers)  # back as replicas
    assert sum(retries.values()) >= len(failovers)


def figures(
    seen: list, off: dict[str, int], retries: dict[str, float], client_retries: float, logs: dict[str, str]
) -> list[str]:
    """What the workers saw and what came out."""
    duplicates = len(seen) - len({m.value for m in seen})
    revisions = sum(orjson.loads(m.value)["revision"] > 0 for m in seen)
    stalled = "; ".join(
        f"{name} " + (", ".join(f"{s:.1f}s ({n} retries)" for s, n in stalls(log)) or "none")
        for name, log in logs.items()
    )
    why = sum((causes(log) for log in logs.values()), collections.Counter())
    errors = collections.Counter(
        re.sub(r"\d+", "N", LOG_LINE.sub(r"\3", line))[:100]
        for log in logs.values()
        for line in error_lines(log)
    )
    return [
        f"stalls the workers logged (first failure -> recovered): {stalled}",
        "touchstream_retries_total{operation=journeys} "
        + ", ".join(f"{name} {n:.0f}" for name, n in retries.items())
        + f"; touchstream_redis_client_retries_total {client_retries:.0f}; the failures retried: "
        + "; ".join(f"{n}x {cause}" for cause, n in why.most_common(4)),
        f"{len(seen)} attribution events seen downstream, {duplicates} duplicates (byte-identical), "
        f"{revisions} revisions",
        "mismatches vs the batch oracle: " + ", ".join(f"{k} {v}" for k, v in off.items()),
        f"worker log errors: {sum(errors.values())}: "
        + "; ".join(f"{n}x {kind}" for kind, n in errors.most_common(4)),
    ]
