"""The stores on a real Redis Cluster (3 primaries, 3 replicas): a node that lost the Lua
scripts gets them again, and a primary killed mid-stream fails over while the batches go
on, with visible retries, counted exactly once (its figures printed in the run's
"reliability figures" section).

The worker end to end on the cluster is the `cluster` case of the core integration tests
(`tests.support.redis_target.SINGLE_AND_CLUSTER`)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from stream.adapters.redis.aggregates import PartitionBatch, PartitionStore, PathIncrement
from stream.adapters.redis.connection import Client, Ttls, connect
from stream.devtools.redis import LocalRedisCluster
from stream.errors import TransientError
from stream.runtime.metrics import MeteredRetries, Metrics
from stream.runtime.retry import RetryPolicy
from tests.support.redis_failover import PrimaryCrash
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

TTLS = Ttls(10**10, 10**10, 10**10)
PARTITIONS = 8


def batch(partition: int, offset: int) -> PartitionBatch:
    """One conversion on the path `email > direct`, from the event at `offset`."""
    return PartitionBatch(
        partition, "paths-fence", offset, [PathIncrement(offset, "email > direct", 1, 0, 0)]
    )


@dataclass(frozen=True)
class RecordedRetries(MeteredRetries):
    """The worker's retry observer (logs, `touchstream_retries_total`, `touchstream_stalled`),
    which also keeps what each retry failed on, for the figures."""

    causes: list[str] = field(default_factory=list)

    def retrying(self, what: str, failures: int, delay: float, exc: BaseException) -> None:
        self.causes.append(type(exc).__name__)
        super().retrying(what, failures, delay, exc)


def node_of(client: Client, cluster: LocalRedisCluster, key: str) -> int:
    """The index of the primary serving `key`'s slot, as the client sees it."""
    return cluster.index(int(client.get_node_from_key(key).port))


def run_with(cluster: LocalRedisCluster, prefix: str, scenario: Callable[..., Awaitable[int]]) -> int:
    """`scenario(client, store)` on a fresh cluster client and store; the conversions counted."""

    async def run() -> int:
        client = connect(cluster.url, cluster=True)
        try:
            await client.initialize()  # the slot map, for `node_of`
            store = PartitionStore(client, TTLS, prefix=prefix)
            await scenario(client, store)
            return sum(count.conversions for count in (await store.path_stats(PARTITIONS)).values())
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_a_node_that_lost_the_scripts_gets_them_again(redis_cluster: LocalRedisCluster) -> None:
    """Scripts flushed on one primary: the next round trip fails as transient (NOSCRIPT), the
    retried one loads them again on every primary, and the partitions the failed pipeline
    applied on the other nodes are not counted twice (their fences). The model snapshot's
    script finds its way too."""

    async def scenario(client: Client, store: PartitionStore) -> None:
        await store.add_aggregates([batch(p, 0) for p in range(PARTITIONS)], {})
        flushed = redis_cluster.nodes[node_of(client, redis_cluster, store.keys.partition(0, "paths"))]
        await client.execute_command("SCRIPT FLUSH", target_nodes=client.get_node("127.0.0.1", flushed.port))
        second = [batch(p, 1) for p in range(PARTITIONS)]
        with pytest.raises(TransientError, match="lost its Lua scripts"):
            await store.add_aggregates(second, {})
        await RetryPolicy(initial=0.01).run(lambda: store.add_aggregates(second, {}), "aggregates")
        # the model snapshot (redis-py's Script: EVALSHA, loaded where it is missing)
        assert await store.store_snapshot("s-1", b"[]") and not await store.store_snapshot("s-1", b"[]")
        assert await store.current_snapshot() == b"[]"

    assert run_with(redis_cluster, "scripts", scenario) == 2 * PARTITIONS


def test_a_killed_primary_fails_over_and_the_batches_go_on(redis_cluster: LocalRedisCluster, report) -> None:
    """SIGKILL the primary of partition 0's slot (once its replica has every write) while
    batches are written to partitions 0 and 5: its replica takes over, the batches are
    retried meanwhile (counted in touchstream_retries_total, the operation stalled until it
    recovers), and every batch is counted exactly once. The node then restarts and rejoins
    as a replica. The figures go to the run's "reliability figures"."""
    metrics = Metrics.create(CollectorRegistry())
    observer = RecordedRetries(metrics)
    batches, kill_at = 30, 10
    crash = PrimaryCrash(redis_cluster)
    retried: dict[int, int] = {}  # batch -> its retries
    stalled = [0.0]  # seconds from the kill until the next batch went through

    async def scenario(client: Client, store: PartitionStore) -> None:
        promotion: asyncio.Future[float] | None = None
        for offset in range(batches):
            if offset == kill_at:
                await asyncio.to_thread(wait_until, redis_cluster.in_sync, 30, "replicas in sync")
                crash.kill(node_of(client, redis_cluster, store.keys.partition(0, "paths")))
                promotion = asyncio.ensure_future(asyncio.to_thread(crash.wait_promoted))
            before = retries(metrics)
            written = RetryPolicy().run(
                lambda o=offset: store.add_aggregates([batch(0, o), batch(5, o)], {}), "journeys", observer
            )
            await asyncio.wait_for(written, timeout=120)  # a failover that never ends fails the test
            if offset == kill_at:
                stalled[0] = time.monotonic() - crash.killed_at
            if retries(metrics) > before:
                retried[offset] = int(retries(metrics) - before)
        assert promotion is not None
        await asyncio.wait_for(promotion, timeout=120)

    try:
        counted = run_with(redis_cluster, "failover", scenario)
    finally:
        if crash.killed_at:
            crash.restart()
            crash.wait_rejoined()
    tries = ", ".join(f"batch {b} {n}x" for b, n in retried.items())
    for line in [
        crash.describe(),
        f"{batches} batches of path counts written to partitions 0 and 5, the primary killed before "
        f"batch {kill_at}: {len(retried)} batch(es) retried ({tries}); batch {kill_at} went through "
        f"{stalled[0]:.1f}s after the kill",
        f"touchstream_retries_total{{operation=journeys}} {retries(metrics):.0f} ("
        + ", ".join(f"{n}x {cause}" for cause, n in Counter(observer.causes).most_common())
        + f"); conversions counted {counted} for {2 * batches} written (each once)",
    ]:
        report(f"redis cluster failover: {line}")
    assert counted == 2 * batches
    assert retries(metrics) >= 1 and sum(retried.values()) == retries(metrics)
    assert metrics.stalled.labels("journeys")._value.get() == 0 and not observer.stalled
    assert crash.victim not in redis_cluster.primaries()  # it came back as a replica


def retries(metrics: Metrics) -> float:
    """touchstream_retries_total{operation="journeys"} of the test's registry."""
    return metrics.retries.labels("journeys")._value.get()
