"""What the Redis Cluster client follows by itself is counted and logged: a slot handed to
another primary (as a resharding does) answers MOVED to a client with the old slot map."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from stream.adapters.redis.connection import ObservedCluster, connect
from stream.devtools.redis import LocalRedisCluster, start_redis_cluster

KEY = "tsm:{moving}:k"


@pytest.fixture
def small_cluster(tmp_path) -> Iterator[LocalRedisCluster]:
    cluster = start_redis_cluster(tmp_path, masters=3, replicas=0)
    yield cluster
    cluster.stop()


def _hand_slot(cluster: LocalRedisCluster, slot: int, to_port: int) -> None:
    """Give the (empty) slot to the node at `to_port`, telling the new owner first and then
    every other node, as the last step of a resharding does."""
    with redis.Redis(port=to_port) as new:
        owner = new.execute_command("CLUSTER", "MYID").decode()
        new.execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner)
    for node in cluster.nodes:
        if node.port != to_port:
            with redis.Redis(port=node.port) as other:
                other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner)


@pytest.mark.cluster
def test_a_moved_slot_is_followed_counted_and_logged(small_cluster, caplog) -> None:
    slot = key_slot(KEY.encode())
    seen: list[str] = []

    async def run() -> tuple[bytes | None, bytes | None]:
        client = connect(small_cluster.seeds, cluster=True)
        assert isinstance(client, ObservedCluster)
        client.on_internal = seen.append
        try:
            before = await client.get(KEY)  # learns the slot map (a MOVED may teach it)
            seen.clear()
            owner = client.nodes_manager.get_node_from_slot(slot)
            other = next(n for n in client.get_primaries() if n.name != owner.name)
            _hand_slot(small_cluster, slot, other.port)
            await asyncio.to_thread(small_cluster.wait_ok)
            await client.set(KEY, b"moved")  # the old owner answers MOVED; the client follows
            after = await client.get(KEY)
            assert client.nodes_manager.get_node_from_slot(slot).name == other.name
            return before, after
        finally:
            await client.aclose()

    with caplog.at_level(logging.INFO, logger="touchstream.redis"):
        assert asyncio.run(run()) == (None, b"moved")
    assert seen == ["moved"]  # the SET, once: the GET after it went to the new owner
    lines = [r.getMessage() for r in caplog.records if "within the client" in r.getMessage()]
    assert lines and lines[0].startswith("Redis Cluster: followed or retried within the client: 1 moved")
