"""A primary of a local Redis Cluster SIGKILLed, failed over and brought back, timed: for the
failover tests (tests/integration/test_redis_cluster.py, tests/reliability/test_redis_failover.py).

`PrimaryCrash.kill` SIGKILLs a primary; `wait_promoted` waits until another node became a
primary in its place and every running node says `cluster_state:ok`; `restart` starts the
killed node again and `wait_rejoined` waits until it is a replica in sync and the cluster
is whole (`LocalRedisCluster.wait_ok`). The timings are kept for the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from stream.devtools.redis import LocalRedisCluster
from tests.support.waiting import wait_until


def cluster_state_ok(port: int) -> bool:
    """The node on `port` answers and says `cluster_state:ok`."""
    try:
        with redis.Redis(port=port, socket_timeout=2) as client:
            return bool(client.cluster("INFO")["cluster_state"] == "ok")
    except redis.RedisError:
        return False


def role(port: int) -> str:
    """`master`, `slave`, or `down` when the node does not answer."""
    try:
        with redis.Redis(port=port, socket_timeout=2) as client:
            return str(client.info("replication")["role"])
    except redis.RedisError:
        return "down"


def keys_held(cluster: LocalRedisCluster, index: int) -> int:
    """How many keys node `index` holds (DBSIZE); 0 when it does not answer."""
    try:
        with redis.Redis(port=cluster.nodes[index].port, socket_timeout=2) as client:
            return int(client.dbsize())
    except redis.RedisError:
        return 0


def busiest_primary(cluster: LocalRedisCluster) -> int:
    """The running primary that holds the most keys."""
    return max(cluster.primaries(), key=lambda i: keys_held(cluster, i))


@dataclass
class PrimaryCrash:
    """One primary of `cluster` killed, its failover and its return, timed (monotonic seconds)."""

    cluster: LocalRedisCluster
    victim: int = -1  # the index of the killed node
    promoted: int = -1  # the index of the replica promoted in its place
    keys: int = 0  # the keys the victim held when it was killed
    killed_at: float = 0.0
    promotion_s: float = 0.0  # kill -> its replica a primary and every running node's cluster state ok
    restarted_at: float = 0.0
    rejoined_s: float = 0.0  # restart -> the old primary a replica in sync, the cluster ok
    rejoined_as: str = ""  # the restarted node's role once the cluster was whole again
    _primaries: set[int] = field(default_factory=set)

    def kill(self, index: int) -> None:
        """SIGKILL primary `index` (a crash: no shutdown)."""
        assert index in self.cluster.primaries(), f"node {index} is not a primary"
        self._primaries = set(self.cluster.primaries())
        self.victim, self.keys = index, keys_held(self.cluster, index)
        self.killed_at = time.monotonic()
        self.cluster.kill(index)

    def wait_promoted(self, timeout: float = 60) -> float:
        """Until a replica took the victim's place and every running node says cluster_state
        ok; the seconds since the kill."""

        def promoted() -> list[int]:
            new = sorted(set(self.cluster.primaries()) - self._primaries)
            running = [n.port for n in self.cluster.nodes if n.pid]
            return new if new and all(cluster_state_ok(port) for port in running) else []

        self.promoted = wait_until(promoted, timeout, f"node {self.victim}'s replica promoted", 0.05)[0]
        self.promotion_s = time.monotonic() - self.killed_at
        return self.promotion_s

    def restart(self) -> None:
        """Start the killed node again (on its ports and data): it rejoins as a replica."""
        self.restarted_at = time.monotonic()
        self.cluster.restart(self.victim)

    def wait_rejoined(self, timeout: float = 60) -> float:
        """Until the restarted node is a replica in sync and the cluster whole; the seconds
        since its restart."""
        self.cluster.wait_ok(timeout)
        port = self.cluster.nodes[self.victim].port
        wait_until(lambda: role(port) == "slave", timeout, f"node {self.victim} a replica again")
        self.rejoined_as = role(port)
        self.rejoined_s = time.monotonic() - self.restarted_at
        return self.rejoined_s

    def describe(self) -> str:
        """What happened, for the figures."""
        victim, promoted = self.cluster.nodes[self.victim], self.cluster.nodes[self.promoted]
        back = (
            f"restarted {self.restarted_at - self.killed_at:.1f}s after the kill, it rejoined as a replica "
            f"(in sync, cluster ok) {self.rejoined_s:.1f}s later"
            if self.rejoined_s
            else "not restarted"
        )
        return (
            f"SIGKILLed primary node {self.victim} (port {victim.port}, {self.keys} keys); its replica node "
            f"{self.promoted} (port {promoted.port}) was promoted, cluster_state ok on every running node, "
            f"{self.promotion_s:.1f}s after the kill; {back}"
        )
