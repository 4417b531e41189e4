"""The stores on a real Redis Cluster (3 primaries, 3 replicas): a node that lost the Lua
scripts gets them again, and a primary killed mid-stream fails over while the batches go
on, with visible retries, counted exactly once.

The worker end to end on the cluster is the `cluster` case of the core integration tests
(`tests.support.redis_target.SINGLE_AND_CLUSTER`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry

from stream.adapters.redis.aggregates import PartitionBatch, PartitionStore, PathIncrement
from stream.adapters.redis.connection import Client, Ttls, connect
from stream.devtools.redis import LocalRedisCluster
from stream.errors import TransientError
from stream.runtime.metrics import MeteredRetries, Metrics
from stream.runtime.retry import RetryPolicy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

TTLS = Ttls(10**10, 10**10, 10**10)
PARTITIONS = 8


def batch(partition: int, offset: int) -> PartitionBatch:
    """One conversion on the path `email > direct`, from the event at `offset`."""
    return PartitionBatch(
        partition, "paths-fence", offset, [PathIncrement(offset, "email > direct", 1, 0, 0)]
    )


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


def test_a_killed_primary_fails_over_and_the_batches_go_on(redis_cluster: LocalRedisCluster) -> None:
    """SIGKILL the primary of partition 0's slot (once its replica has every write) while
    batches are written to partitions 0 and 5: its replica takes over, the batches are
    retried meanwhile (counted in touchstream_retries_total, the operation stalled until it
    recovers), and every batch is counted exactly once. The node then restarts and rejoins
    as a replica."""
    metrics = Metrics.create(CollectorRegistry())
    observer = MeteredRetries(metrics)
    batches = 30
    killed: list[int] = []

    async def scenario(client: Client, store: PartitionStore) -> None:
        primary = node_of(client, redis_cluster, store.keys.partition(0, "paths"))
        for offset in range(batches):
            if offset == 10:
                await asyncio.to_thread(wait_until, redis_cluster.in_sync, 30, "replicas in sync")
                redis_cluster.kill(primary)
                killed.append(primary)
            retried = RetryPolicy().run(
                lambda o=offset: store.add_aggregates([batch(0, o), batch(5, o)], {}), "journeys", observer
            )
            await asyncio.wait_for(retried, timeout=120)  # a failover that never ends fails the test

    try:
        counted = run_with(redis_cluster, "failover", scenario)
    finally:
        for index in killed:
            redis_cluster.restart(index)
        redis_cluster.wait_ok()
    assert counted == 2 * batches
    assert metrics.retries.labels("journeys")._value.get() >= 1
    assert metrics.stalled.labels("journeys")._value.get() == 0 and not observer.stalled
    assert killed and killed[0] not in redis_cluster.primaries()  # it came back as a replica
