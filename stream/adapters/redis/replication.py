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
pipelined by hand on one connection of that node (never through redis-py's cluster
pipeline, whose retries and redirections could send them apart): a primary's replication
stream is one ordered log, so a replica that has that write has every earlier write of
the batch, from any connection.
One round trip per batch, to every primary at once.

Fewer acknowledgements than asked within the timeout fail the batch as transient: it is
retried (and applies nothing twice) until the replicas catch up, which stalls the worker
while a primary has no replica. Lowering `TOUCHSTREAM_REDIS_REPLICAS` to 0 trades that
stall for the window the barrier closes.

What WAIT does not give: it is not consensus. A failover can still promote a replica that
did not acknowledge (with several replicas per primary and fewer waited for). A barrier
key whose slot moved answers MOVED or ASK: the barrier then fails as transient, the slot
map is read again, and the retried batch's barrier uses keys where they now are.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.crc import key_slot
from redis.exceptions import MovedError, RedisError, ResponseError

from stream.adapters.redis.connection import Client, RoundTrips, Ttls
from stream.adapters.redis.keys import DEFAULT_PREFIX
from stream.errors import TransientError

log = logging.getLogger("touchstream.redis")

MARK_TTL_MS = 3_600_000  # the barrier's own keys: one tiny string per primary, refreshed each batch


@cache
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
        auto: bool = False,
    ) -> None:
        super().__init__(redis, ttls, timeout_s=timeout_ms / 1000 + 5.0, prefix=prefix)
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.auto = auto  # `replicas` came from `auto`: a cluster built without replicas waits for none
        self._marks: dict[str, tuple[int, str]] = {}  # primary name -> (a slot it serves, a key there)

    async def wait(self) -> None:
        if self.replicas <= 0:
            return
        if isinstance(self.redis, RedisCluster):
            if not self.redis.nodes_manager.slots_cache:
                await self.call(self.redis.initialize())  # no command yet: no slot map either
            if self.auto:
                self._resolve_auto()
                if self.replicas <= 0:
                    return
            targets = self._targets()
            acked = await self.call(asyncio.gather(*(self._on_node(node, key) for node, key in targets)))
            if self._moved():
                raise TransientError("Redis Cluster slots moved during the replication barrier: again")
            self._check([node.name for node, _key in targets], acked)
            return
        pipe = self.pipeline()
        pipe.set(f"{self.keys.prefix}:replicated", b"1", px=MARK_TTL_MS)
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        try:
            _ok, acked = await self.run(pipe)
        except ResponseError as exc:  # a replica now ("WAIT cannot be used…", READONLY)
            raise TransientError(f"Redis replication barrier refused: {exc}") from exc
        self._check(["redis"], [acked])

    async def _on_node(self, node: ClusterNode, key: str) -> int:
        """SET then WAIT on one connection of `node`, sent by hand: redis-py's cluster pipeline
        would follow a redirected SET on another connection, or re-send the WAIT to another
        node after a retry, and the WAIT would then wait for nothing. Any error (MOVED, ASK,
        a replica's refusal, a lost connection) fails the barrier as transient."""
        commands = [
            PipelineCommand(0, "SET", key, b"1", "PX", MARK_TTL_MS),
            PipelineCommand(1, "WAIT", self.replicas, self.timeout_ms),
        ]
        try:
            await node.execute_pipeline(commands)
        except RedisError as exc:
            raise TransientError(
                f"Redis replication barrier on {node.name}: {type(exc).__name__} {exc}"
            ) from exc
        for command in commands:
            if isinstance(command.result, Exception):
                if isinstance(command.result, MovedError):
                    self._marks.clear()
                    await self.redis.nodes_manager.initialize()  # type: ignore[union-attr]
                failure = command.result
                raise TransientError(
                    f"Redis replication barrier on {node.name}: {type(failure).__name__} {failure}"
                )
        return int(commands[1].result)

    def _resolve_auto(self) -> None:
        """Once, from the first slot map: a cluster none of whose slots has a replica was built
        without them, and `auto` then waits for none (it would otherwise stall every batch);
        a single replica anywhere keeps the barrier (a primary that lost its replica in a
        failover is a stall worth having)."""
        assert isinstance(self.redis, RedisCluster)
        self.auto = False
        if all(len(nodes) < 2 for nodes in self.redis.nodes_manager.slots_cache.values()):
            self.replicas = 0
            log.warning(
                "Redis Cluster: no primary has a replica, so TOUCHSTREAM_REDIS_REPLICAS=auto waits for "
                "none (a primary that dies loses the writes of its last moments; give each a replica)"
            )

    def _check(self, names: list[str], acked: list[Any]) -> None:
        short = [f"{name}: {int(n)}" for name, n in zip(names, acked, strict=True) if int(n) < self.replicas]
        if short:
            raise TransientError(
                f"Redis replication: fewer than {self.replicas} replica(s) acknowledged the batch's "
                f"writes within {self.timeout_ms} ms ({', '.join(short)}); the batch is retried "
                "(TOUCHSTREAM_REDIS_REPLICAS=0 stops waiting)"
            )

    def _targets(self) -> list[tuple[ClusterNode, str]]:
        """(primary, the barrier key on it), one per node that heads a slot in the client's
        slot map; worked out again when that map changed."""
        assert isinstance(self.redis, RedisCluster)
        manager = self.redis.nodes_manager
        heads = (
            {nodes[0].name for nodes in manager.slots_cache.values()} if self._stale() else set(self._marks)
        )
        if set(self._marks) != heads or self._moved():
            self._marks = {}
            for slot, nodes in sorted(manager.slots_cache.items()):
                name = nodes[0].name
                if name not in self._marks:
                    self._marks[name] = (slot, f"{self.keys.prefix}:{{{tag_for_slot(slot)}}}:replicated")
        return [(manager.nodes_cache[name], key) for name, (_slot, key) in self._marks.items()]

    def _stale(self) -> bool:
        """The client knows of a primary this barrier has no key for (a slot map refreshed)."""
        assert isinstance(self.redis, RedisCluster)
        return not self._marks or any(n.name not in self._marks for n in self.redis.get_primaries())

    def _moved(self) -> bool:
        """A remembered primary no longer serves the slot its barrier key is in."""
        assert isinstance(self.redis, RedisCluster)
        cache = self.redis.nodes_manager.slots_cache
        return any(
            slot not in cache or cache[slot][0].name != name for name, (slot, _key) in self._marks.items()
        )
