"""Nothing lost, nothing counted twice on a replicated Kafka cluster whose broker crashes.

Three KRaft nodes on loopback, each a broker and a controller (`kafka_cluster`,
stream/devtools/kafka_cluster.py). The worker provisions its topics itself, with three
replicas and `min.insync.replicas=2`; every producer (the worker's, the publisher's) waits
for acks=all and is idempotent. A seeded stream of ~4,500 events — the simulator's
customers and multi-device persons — flows over 4 partitions while the test SIGKILLs the
node that leads the most partitions of the raw topic, starts and stops a second worker
while that node is down (rebalances 1 -> 2 -> 1), then restarts the node and waits until
it is back in sync. After the stream drains, everything is compared with the batch oracle
as the chaos test does (tests/reliability/compare.py): every conversion's latest revision,
every journey, every path count and report counter; a revision seen twice must be
byte-identical.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream.adapters.kafka.topics import all_topics
from stream.core.config import DAY_MS
from stream.core.topics import RAW
from stream.devtools import devices
from stream.devtools.kafka_cluster import KafkaCluster
from stream.devtools.redis import RedisServer, start_redis
from stream.devtools.runner import WorkerProcess
from stream.devtools.simulate import generate
from stream.settings import Settings
from tests.reliability.compare import applied_by, oracle, settle
from tests.support.events import END_MS
from tests.support.kafka import publish
from tests.support.settings import free_port, run_settings
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.cluster]

SEED = 20_261_124
PARTITIONS = 4
RATE = 60.0  # events per second: the faults land while events flow (75 s of them)
PLAN = [  # (share of the input applied, action); a worker takes ~15 s to start on 2 cores
    (0.10, "kill the busiest leader"),
    (0.20, "start second worker"),
    (0.60, "stop second worker"),
    (0.75, "restart the killed node"),
]


def cluster_events(end_ms: int) -> list[dict]:
    """The simulator's customers and multi-device persons, in publication order."""
    customers = list(generate(400, seed=SEED, end_ms=end_ms, span_ms=120 * DAY_MS))
    persons = devices.persons(40, seed=SEED, start_ms=end_ms - 90 * DAY_MS)
    merged = sorted(customers + persons, key=lambda e: (e["ts"], e["event_id"]))
    return devices.publication_order(merged, seed=SEED)


def replicas_and_configs(bootstrap: str, topics: list[str]) -> dict[str, tuple[set[int], dict[str, str]]]:
    """Per topic: the replica counts of its partitions, and its topic configs, as the brokers say."""

    async def run() -> dict[str, tuple[set[int], dict[str, str]]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            metas = {
                t["topic"]: t["partitions"] for t in await admin.describe_topics() if t["topic"] in topics
            }
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
            )
        finally:
            await admin.close()
        configs = {
            r["resource_name"]: {e["config_names"]: e["config_value"] for e in r["config_entries"]}
            for r in response.to_object()["resources"]
        }
        return {t: ({len(p["replicas"]) for p in metas.get(t, [])}, configs.get(t, {})) for t in topics}

    return asyncio.run(run())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server with AOF of this test's own."""
    server = start_redis(tmp_path / "redis", appendonly=True)
    try:
        yield server
    finally:
        server.stop()


@dataclasses.dataclass
class Workers:
    """The main worker, a second one for the rebalances, and what they applied."""

    settings: Settings
    main: WorkerProcess
    second: WorkerProcess
    applied: float = 0.0  # events the journeys handler applied in stopped worker processes
    crashes: int = 0  # the main worker died without being stopped (restarted by `watchdog`)
    second_applied: float = 0.0  # events the second worker applied while it held partitions

    def progress(self, total: int) -> float:
        return (self.applied + applied_by(self.main) + applied_by(self.second)) / total

    def watchdog(self) -> None:
        if self.main.proc is not None and self.main.proc.poll() is not None:
            self.crashes += 1
            self.main.start(timeout=120)

    def stop_second(self) -> None:
        self.second_applied = applied_by(self.second)
        self.applied += self.second_applied
        self.second.stop()

    def errors(self) -> list[str]:
        lines = (self.main.output() + self.second.output()).splitlines()
        return [line for line in lines if "[ERROR]" in line or "Traceback" in line]


@pytest.fixture
def workers(kafka_cluster: KafkaCluster, store: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    """The two workers of a run of its own (consumer group, topics), not yet started;
    both stopped at the end."""
    settings = settings_for(kafka_cluster, store)
    pair = Workers(
        settings,
        WorkerProcess(dataclasses.replace(settings, worker_id="main"), tmp_path / "main.log"),
        WorkerProcess(
            dataclasses.replace(settings, worker_id="second", web_port=free_port()), tmp_path / "second.log"
        ),
    )
    try:
        yield pair
    finally:
        pair.main.stop()
        pair.second.stop()


class BrokerCrash:
    """Kills the node leading the most partitions of `topic`, times the leaders' move and the
    node's return to being in sync."""

    def __init__(self, cluster: KafkaCluster, topic: str) -> None:
        self.cluster, self.topic = cluster, topic
        self.victim, self.led = 0, [0]
        self.killed_at = self.failover_s = self.down_s = 0.0

    def kill(self) -> None:
        leaders = self.cluster.leaders(self.topic)
        self.victim = collections.Counter(leaders.values()).most_common(1)[0][0]
        self.led = sorted(p for p, node in leaders.items() if node == self.victim)
        self.killed_at = time.monotonic()
        self.cluster.kill(self.victim)

        def moved() -> bool:
            now = self.cluster.leaders(self.topic)
            return all(now[p] not in (-1, self.victim) for p in self.led)

        wait_until(moved, 60, f"new leaders for the partitions node {self.victim} led", interval=0.1)
        self.failover_s = time.monotonic() - self.killed_at

    def restart(self) -> None:
        self.cluster.restart(self.victim)
        self.down_s = time.monotonic() - self.killed_at

    def describe(self) -> str:
        return (
            f"SIGKILLed node {self.victim} (leader of raw partitions {self.led}); their leaders moved "
            f"{self.failover_s:.1f}s later; the node was down {self.down_s:.0f}s"
        )


def run_plan(actions: dict[str, Callable[[], None]], progress: Callable[[], float], watchdog) -> list[str]:
    """Each action once its share of the input is applied (or at once past the budget)."""
    done, started, budget = [], time.monotonic(), 300.0
    for at, action in PLAN:
        left = max(0.0, budget - (time.monotonic() - started))
        with contextlib.suppress(TimeoutError):
            wait_until(lambda at=at: progress() >= at, left, f"{at:.0%} applied", interval=0.1)
        watchdog()
        begun, share = time.monotonic(), progress()
        actions[action]()
        took = time.monotonic() - begun
        done.append(f"{begun - started:5.1f}s at {share:.0%} {action} (took {took:.1f}s)")
    return done


def settings_for(cluster: KafkaCluster, store: RedisServer) -> Settings:
    return run_settings(
        cluster.bootstrap,
        store.url,
        f"cluster-{random.randrange(16**6):06x}",
        partitions=PARTITIONS,
        replication_factor=3,
        batch_size=200,
        lookback_ms=30 * DAY_MS,
        sweep_interval_ms=1000,
        model_refresh_ms=3_600_000,
        kafka_session_timeout_ms=6000,
    )


def test_a_broker_crash_loses_nothing_and_counts_nothing_twice(kafka_cluster, workers, report) -> None:
    began = time.monotonic()
    settings = workers.settings
    events = cluster_events(END_MS)
    expected = oracle(settings, events, int(time.time() * 1000) + 3_600_000)
    workers.main.start(timeout=120)  # it provisions the topics
    topics = replicas_and_configs(settings.kafka_bootstrap_servers, all_topics(settings))
    assert {t: (r, c.get("min.insync.replicas")) for t, (r, c) in topics.items()} == dict.fromkeys(
        topics, ({3}, "2")
    )
    crash = BrokerCrash(kafka_cluster, settings.topic(RAW))
    failures: list[BaseException] = []

    def publisher() -> None:
        try:
            publish(settings, settings.topic(RAW), events, rate=RATE)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    producer = threading.Thread(target=publisher, daemon=True)  # a failed test does not wait for it
    start = time.monotonic()
    producer.start()
    mid_stream: list[bool] = []

    def kill() -> None:
        mid_stream.append(producer.is_alive())
        crash.kill()

    actions = {
        "kill the busiest leader": kill,
        "start second worker": lambda: workers.second.start(timeout=120),
        "stop second worker": workers.stop_second,
        "restart the killed node": crash.restart,
    }
    schedule = run_plan(actions, lambda: workers.progress(len(events)), workers.watchdog)
    producer.join()
    published = time.monotonic() - start
    assert failures == []
    seen, off, examples = settle(settings, expected, workers.watchdog)
    exact = time.monotonic() - start
    wait_until(lambda: kafka_cluster.under_replicated() == 0, 120, "every partition in sync", interval=0.5)
    synced = time.monotonic() - start
    workers.main.stop()
    duplicates = len(seen) - len({m.value for m in seen})
    revisions = sum(orjson.loads(m.value)["revision"] > 0 for m in seen)
    errors = error_kinds(workers.errors())
    for line in [
        f"{len(events)} events over {PARTITIONS} partitions, {len(expected.conversions)} conversions; "
        "3 KRaft nodes, RF 3, min.insync.replicas 2, acks=all, idempotent producers",
        f"{crash.describe()}; rebalances 1->2->1 while it was down; worker crashes {workers.crashes}",
        f"{len(seen)} attribution events seen downstream, {duplicates} duplicates (byte-identical), "
        f"{revisions} revisions",
        "mismatches vs the batch oracle: " + ", ".join(f"{k} {v}" for k, v in off.items()),
        "schedule: " + "; ".join(schedule),
        f"published in {published:.0f}s, equal to the oracle at {exact:.0f}s, every partition in sync "
        f"at {synced:.0f}s; the test took {time.monotonic() - began:.0f}s",
        f"worker log errors: {sum(errors.values())}: "
        + "; ".join(f"{n}x {kind}" for kind, n in errors.most_common(4)),
        *examples,
    ]:
        report(f"kafka cluster: {line}"[:2000])
    assert off == dict.fromkeys(off, 0)
    assert mid_stream == [True], "the broker was killed while events were still being published"
    assert workers.second_applied > 0, "the second worker took partitions while the node was down"
    assert workers.crashes == 0


def error_kinds(lines: list[str]) -> collections.Counter[str]:
    """Error log lines by kind: without the time stamp, process id and numbers."""
    return collections.Counter(
        re.sub(r"\d+", "N", re.sub(r"^\[[^]]*\] \[\d+\] \[ERROR\] ", "", line))[:100] for line in lines
    )
