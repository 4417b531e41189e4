"""The replication barrier against real servers: a primary with a replica, and the Redis
Cluster. A replica paused with SIGSTOP cannot acknowledge: the barrier then fails as
transient, and passes again once the replica runs."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from stream.adapters.redis.connection import Ttls, connect
from stream.adapters.redis.replication import ReplicationBarrier, tag_for_slot
from stream.devtools.redis import LocalRedisCluster, RedisServer, start_redis, start_redis_cluster
from stream.errors import TransientError
from tests.support.waiting import wait_until

TTLS = Ttls(1000, 1000, 1000)


@contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def primary_and_replica(tmp_path) -> Iterator[tuple[RedisServer, RedisServer]]:
    primary, replica = start_redis(tmp_path / "primary"), start_redis(tmp_path / "replica")
    port = int(primary.url.rsplit(":", 1)[1].split("/")[0])
    with redis.Redis.from_url(replica.url) as r:
        r.replicaof("127.0.0.1", port)
        wait_until(lambda: r.info("replication")["master_link_status"] == "up", 20, "the replica in sync")
    yield primary, replica
    replica.stop()
    primary.stop()


async def _barrier_then_write(url: str, replica_pid: int) -> list[str]:
    client = connect(url)
    barrier = ReplicationBarrier(client, TTLS, replicas=1, timeout_ms=200)
    outcomes = []
    try:
        await client.set("before", 1)
        await barrier.wait()
        outcomes.append("replicated")
        with paused(replica_pid):
            with redis.Redis.from_url(url) as other:  # a write through another connection
                other.set("written while the replica is paused", 1)
            try:
                await barrier.wait()
                outcomes.append("replicated")
            except TransientError as exc:
                outcomes.append(str(exc))
        await barrier.wait()
        outcomes.append("replicated")
    finally:
        await client.aclose()
    return outcomes


def test_the_barrier_waits_for_the_replica_of_every_write(primary_and_replica) -> None:
    primary, replica = primary_and_replica
    outcomes = asyncio.run(_barrier_then_write(primary.url, replica._child.popen.pid))
    assert outcomes[0] == outcomes[2] == "replicated"
    assert outcomes[1].startswith(
        "Redis replication: fewer than 1 replica(s) acknowledged the batch's writes within 200 ms (redis: 0)"
    )


def test_no_replicas_asked_no_round_trip(primary_and_replica) -> None:
    primary, _ = primary_and_replica

    async def run() -> None:
        client = connect(primary.url)
        try:
            await ReplicationBarrier(client, TTLS, replicas=0, timeout_ms=200).wait()
        finally:
            await client.aclose()

    asyncio.run(run())
    with redis.Redis.from_url(primary.url) as p:
        assert p.exists("ts:replicated") == 0


def test_tags_land_on_their_slot() -> None:
    from redis.crc import key_slot

    for slot in (0, 1, 5461, 10923, 16383):
        assert key_slot(f"ts:{{{tag_for_slot(slot)}}}:replicated".encode()) == slot


@pytest.mark.cluster
def test_the_barrier_reaches_every_primary_of_the_cluster(redis_cluster: LocalRedisCluster) -> None:
    redis_cluster.wait_ok()

    async def run() -> tuple[set[str], str]:
        client = connect(redis_cluster.seeds, cluster=True)
        assert isinstance(client, RedisCluster)
        barrier = ReplicationBarrier(client, TTLS, replicas=1, timeout_ms=300, prefix="tsr")
        try:
            await barrier.wait()
            primaries = {node.name for node in client.get_primaries()}
            replica = next(n for n in redis_cluster.nodes if n.pid and f"127.0.0.1:{n.port}" not in primaries)
            assert replica.pid is not None
            with paused(replica.pid), pytest.raises(TransientError) as failed:
                await barrier.wait()
            await barrier.wait()
            return set(barrier._marks), str(failed.value)
        finally:
            await client.aclose()

    marked, shortfall = asyncio.run(run())
    primaries = {f"127.0.0.1:{redis_cluster.nodes[i].port}" for i in redis_cluster.primaries()}
    assert marked == primaries
    # the paused replica's primary, and only it, fell short
    assert shortfall.count(": 0") == 1
    assert sum(f"{name}: 0" in shortfall for name in primaries) == 1


@pytest.mark.cluster
def test_a_barrier_key_whose_slot_moved_fails_once_then_the_barrier_follows(tmp_path) -> None:
    cluster = start_redis_cluster(tmp_path)

    async def run() -> tuple[str, str, str, bool]:
        client = connect(cluster.seeds, cluster=True)
        assert isinstance(client, RedisCluster)
        barrier = ReplicationBarrier(client, TTLS, replicas=1, timeout_ms=1000, prefix="tsr")
        try:
            await barrier.wait()
            old, (slot, key) = next(iter(barrier._marks.items()))
            new = next(n for n in client.get_primaries() if n.name != old)
            await client.delete(key)  # an owner holding keys of a slot cannot hand it over
            await asyncio.to_thread(_hand_slot, cluster, slot, new.port)
            with pytest.raises(TransientError) as failed:
                await barrier.wait()  # its key's old primary answers MOVED
            await barrier.wait()
            return old, new.name, str(failed.value), barrier._marks[old][0] != slot
        finally:
            await client.aclose()

    try:
        old, _new, failure, remarked = asyncio.run(run())
    finally:
        cluster.stop()
    assert failure.startswith(f"Redis replication barrier on {old}: MovedError ")
    assert remarked  # the old primary's barrier key is now in a slot it still serves


def _hand_slot(cluster: LocalRedisCluster, slot: int, to_port: int) -> None:
    """Give the empty `slot` to the primary at `to_port`: it first, then the other primaries."""
    with redis.Redis(port=to_port) as new:
        owner = new.execute_command("CLUSTER", "MYID").decode()
    ports = [to_port] + [
        cluster.nodes[i].port for i in cluster.primaries() if cluster.nodes[i].port != to_port
    ]
    for port in ports:
        with redis.Redis(port=port) as node:
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner)
    cluster.wait_ok()


@pytest.mark.cluster
def test_auto_waits_for_none_on_a_cluster_built_without_replicas(tmp_path, caplog) -> None:
    cluster = start_redis_cluster(tmp_path, replicas=0)

    async def run() -> tuple[int, int]:
        client = connect(cluster.seeds, cluster=True)
        assert isinstance(client, RedisCluster)
        auto = ReplicationBarrier(client, TTLS, replicas=1, timeout_ms=300, prefix="tsr", auto=True)
        asked = ReplicationBarrier(client, TTLS, replicas=1, timeout_ms=300, prefix="tsr")
        try:
            await auto.wait()  # no replica anywhere: nothing to wait for
            with pytest.raises(TransientError, match="fewer than 1 replica"):
                await asked.wait()  # asked for explicitly: the stall is what the operator chose
            return auto.replicas, asked.replicas
        finally:
            await client.aclose()

    try:
        assert asyncio.run(run()) == (0, 1)
    finally:
        cluster.stop()
    assert "no primary has a replica" in caplog.text
