"""The replication barrier: a batch's Redis writes are on a replica before Kafka hears of it.

Redis replicates asynchronously: a primary acknowledges a write before any replica has
it. Were a primary to die after the worker committed a batch's offsets but before its
replica received the batch's writes, the replica promoted in its place would lack them
while Kafka holds them as done: those events would never be applied again.

So before a batch is acked, the worker waits until `replicas` replicas of every primary
have acknowledged everything written to it so far (`TOUCHSTREAM_REDIS_REPLICAS`, 1 by
default on a cluster). Redis's `WAIT n timeout` blocks until n replicas acknowledged the
writes *its own connection* made; the batch wrote through other connections of the pool.
Each primary therefore gets one small write (a key of a slot it serves) and then `WAIT`,
pipelined on one connection: a primary's replication stream is one ordered log, so a
replica that has that write has every earlier write of the batch, from any connection.
One round trip per batch, to every primary at once.

Fewer acknowledgements than asked within the timeout fail the batch as transient: it is
retried (and applies nothing twice) until the replicas catch up, which stalls the worker
while a primary has no replica. Lowering `TOUCHSTREAM_REDIS_REPLICAS` to 0 trades that
stall for the window the barrier closes.

What WAIT does not give: it is not consensus. A failover can still promote a replica that
did not acknowledge (with several replicas per primary and fewer waited for), and the
check that the barrier's write and its WAIT met on the primary that owns the slot relies
on the client's slot map, which a resharding may move underneath (the barrier then fails
as transient and runs again).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError

from stream.adapters.redis.connection import Client, RoundTrips, Ttls
from stream.adapters.redis.keys import DEFAULT_PREFIX
from stream.errors import TransientError

MARK_TTL_MS = 3_600_000  # the barrier's own keys: one tiny string per primary, refreshed each batch


def tag_for_slot(slot: int) -> str:
    """A hash tag whose key slot is `slot` (the first of `r0`, `r1`, …)."""
    i = 0
    while key_slot(f"r{i}".encode()) != slot:
        i += 1
    return f"r{i}"


class ReplicationBarrier(RoundTrips):
    """`wait()`: every primary's writes so far are on `replicas` replicas, or `TransientError`."""

    def __init__(
        self,
        redis: Client,
        ttls: Ttls,
        replicas: int,
        timeout_ms: int,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(redis, ttls, timeout_s=timeout_ms / 1000 + 5.0, prefix=prefix)
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self._marks: dict[str, tuple[int, str]] = {}  # primary name -> (a slot it serves, a key there)

    async def wait(self) -> None:
        if self.replicas <= 0:
            return
        pipe = self.pipeline()
        targets = self._targets()
        for node, key in targets:
            pipe.set(key, b"1", px=MARK_TTL_MS)
            if node is None:
                pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
            else:
                pipe.execute_command("WAIT", self.replicas, self.timeout_ms, target_nodes=node)
        try:
            replies = await self.run(pipe)
        except ResponseError as exc:  # a node became a replica ("WAIT cannot be used…", READONLY)
            raise TransientError(f"Redis replication barrier refused: {exc}") from exc
        self._check(targets, replies[1::2])

    def _check(self, targets: list[tuple[ClusterNode | None, str]], acked: list[Any]) -> None:
        if isinstance(self.redis, RedisCluster) and self._moved():
            raise TransientError("Redis Cluster slots moved during the replication barrier: again")
        short = [
            f"{node.name if node else 'redis'}: {int(n)}"
            for (node, _key), n in zip(targets, acked, strict=True)
            if int(n) < self.replicas
        ]
        if short:
            raise TransientError(
                f"Redis replication: fewer than {self.replicas} replica(s) acknowledged the batch's "
                f"writes within {self.timeout_ms} ms ({', '.join(short)}); the batch is retried "
                "(TOUCHSTREAM_REDIS_REPLICAS=0 stops waiting)"
            )

    def _targets(self) -> list[tuple[ClusterNode | None, str]]:
        """(primary, the barrier key on it): one per primary of a cluster, else the server."""
        if not isinstance(self.redis, RedisCluster):
            return [(None, f"{self.keys.prefix}:replicated")]
        manager = self.redis.nodes_manager
        primaries = {node.name: node for node in self.redis.get_primaries()}
        if set(self._marks) != set(primaries) or self._moved():
            self._marks = {}
            for slot, nodes in sorted(manager.slots_cache.items()):
                name = nodes[0].name
                if name not in self._marks:
                    self._marks[name] = (slot, f"{self.keys.prefix}:{{{tag_for_slot(slot)}}}:replicated")
        return [(primaries[name], key) for name, (_slot, key) in self._marks.items() if name in primaries]

    def _moved(self) -> bool:
        """A remembered primary no longer serves the slot its barrier key is in."""
        assert isinstance(self.redis, RedisCluster)
        cache = self.redis.nodes_manager.slots_cache
        return any(
            slot not in cache or cache[slot][0].name != name for name, (slot, _key) in self._marks.items()
        )
