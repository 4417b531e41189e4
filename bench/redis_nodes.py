"""The benchmark's Redis, node by node: one server, or every node of a Redis Cluster.

Flushing, CPU time and memory are per node (`INFO`, `MEMORY USAGE`, `FLUSHALL` address one
node), so the benchmark keeps one plain client per node: the primaries, which serve the
workers, and the replicas, which only follow them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from redis import Redis

from bench.measure import redis_cpu_seconds
from stream.adapters.redis.connection import seed_urls


@dataclass
class RedisNodes:
    """Plain clients of the primaries and of the replicas (none for one server)."""

    primaries: list[Redis]
    replicas: list[Redis] = field(default_factory=list)

    def flushall(self) -> None:
        """Every key gone (the replicas follow their primaries)."""
        for node in self.primaries:
            node.flushall()

    def cpu_seconds(self) -> float:
        """CPU seconds the primaries have used so far, summed."""
        return sum(redis_cpu_seconds(node) for node in self.primaries)

    def replica_cpu_seconds(self) -> float:
        """CPU seconds the replicas have used so far, summed (0 without replicas)."""
        return sum(redis_cpu_seconds(node) for node in self.replicas)

    def close(self) -> None:
        for node in self.primaries + self.replicas:
            node.close()


def connect(url: str, cluster: bool) -> RedisNodes:
    """The nodes of the Redis at `url`: one server, or (cluster) the nodes its first seed
    knows, each reached with the seed's credentials and options."""
    if not cluster:
        return RedisNodes([Redis.from_url(url)])
    seed = seed_urls(url)[0]
    with Redis.from_url(seed) as client:
        text = client.execute_command("CLUSTER", "NODES", NEVER_DECODE=True)
    roles = node_roles(text.decode() if isinstance(text, bytes) else str(text))
    return RedisNodes(
        [Redis.from_url(node_url(seed, a)) for a, role in roles.items() if role == "master"],
        [Redis.from_url(node_url(seed, a)) for a, role in roles.items() if role == "slave"],
    )


def node_roles(cluster_nodes: str) -> dict[str, str]:
    """`host:port` -> "master" or "slave", of the healthy nodes in a `CLUSTER NODES` reply."""
    roles = {}
    for line in cluster_nodes.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        flags = set(fields[2].split(","))
        address = fields[1].split("@", 1)[0]
        if not flags & {"fail", "fail?", "noaddr", "handshake"}:
            roles[address] = "master" if "master" in flags else "slave"
    return roles


def node_url(seed: str, address: str) -> str:
    """`seed` with its host and port replaced by `address` (credentials, scheme, db kept)."""
    parts = urlsplit(seed)
    auth, _, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{auth}@{address}" if auth else address))
