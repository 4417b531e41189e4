"""A real Kafka cluster on loopback, without Docker: three KRaft nodes, each a broker and a
controller, whose brokers a test can SIGKILL and restart.

Every node has its own log dir (`<workdir>/node-<id>`), client port and controller port;
the controller quorum is all of them (`controller.quorum.voters`), and their storage is
formatted with one cluster id. Topics default to three replicas with
`min.insync.replicas=2` (so are Kafka's own offsets and transaction state): with
`acks=all`, a write is acknowledged once two copies hold it, and one node down loses
nothing and stops nothing. Failure detection is fast (a killed node is fenced after
3 s, and its partitions get new leaders); the JVMs are small (384 MB heap each) to fit a
2-core machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stream.devtools.kafka import (
    BROKER_SETTINGS,
    LOG4J,
    cluster_id,
    format_storage,
    jvm_argv,
    kafka_classpath,
    kafka_ready,
)
from stream.devtools.process import Child, free_ports
from stream.devtools.tools import java_binary

T = TypeVar("T")
JVM_OPTIONS = ("-Xms128m", "-Xmx384m", "-XX:+UseSerialGC")  # small: 3 JVMs on 2 cores
CLUSTER_SETTINGS = {
    "unclean.leader.election.enable": "false",  # never a leader that lacks acknowledged writes
    # a killed node is fenced (and leads nothing) 6 s after its last heartbeat (not less: on a
    # loaded 2-core machine a live node must not miss it); a restarted
    # one registers again once its old session expired
    "broker.session.timeout.ms": 6000,
    "broker.heartbeat.interval.ms": 1000,
    "controller.quorum.election.timeout.ms": 2000,
    "controller.quorum.fetch.timeout.ms": 2000,
    "replica.lag.time.max.ms": 10000,
    "num.replica.fetchers": 1,
}


def replication(nodes: int) -> dict[str, int]:
    """Topic defaults for a cluster of `nodes`: three replicas (fewer on a smaller cluster),
    and writes acknowledged by all but one of them."""
    replicas = min(nodes, 3)
    insync = max(1, replicas - 1)
    return {
        "default.replication.factor": replicas,
        "min.insync.replicas": insync,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": insync,
    }


def node_properties(node_id: int, ports: dict[int, tuple[int, int]], data: Path) -> str:
    """server.properties of node `node_id`; `ports`: node id -> (client port, controller port)."""
    port, cport = ports[node_id]
    voters = ",".join(f"{n}@127.0.0.1:{c}" for n, (_p, c) in sorted(ports.items()))
    settings: dict[str, Any] = {
        **BROKER_SETTINGS,
        **CLUSTER_SETTINGS,
        **replication(len(ports)),
        "node.id": node_id,
        "log.dirs": data,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


@dataclass
class KafkaNode:
    """One broker+controller of a `KafkaCluster`."""

    node_id: int
    port: int
    controller_port: int
    workdir: Path
    child: Child
    jvm: list[str]  # the java command line up to the main class

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def format(self, cluster: str) -> None:
        """Format the node's storage for cluster id `cluster` (unless an earlier start did)."""
        format_storage(self.jvm, self.workdir / "server.properties", self.workdir / "data", cluster)

    @property
    def pid(self) -> int | None:
        """Process id while running; None once killed or stopped."""
        return self.child.pid


@dataclass
class KafkaCluster:
    """Running KRaft nodes; `kill` and `restart` one, `stop` them all. Data survives restarts."""

    nodes: dict[int, KafkaNode]  # by node id (1, 2, 3)

    @property
    def bootstrap(self) -> str:
        """Every node's address, comma-separated: clients find the others through any one."""
        return ",".join(node.bootstrap for node in self.nodes.values())

    def _live(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes.values() if node.pid is not None)

    def kill(self, node_id: int) -> None:
        """SIGKILL the node: a crash, no controlled shutdown."""
        self.nodes[node_id].child.kill()

    def restart(self, node_id: int) -> None:
        """Start the node again (stopping it first if it runs) on its ports and data; return
        once it is registered and serves. It may still be catching up: see `under_replicated`."""
        child = self.nodes[node_id].child
        child.stop(timeout=30)
        child.spawn()
        child.await_ready()

    def stop(self, timeout: float = 10) -> None:
        """Stop every node at once (SIGTERM, SIGKILL after `timeout`): the last nodes' controlled
        shutdown may wait for a quorum that is gone, so `timeout` is short."""
        with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.child.stop(timeout), self.nodes.values()))

    def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> id of the node leading it (-1: none) of `topic`."""
        [meta] = _in_thread(lambda admin: admin.describe_topics([topic]), self._live())
        return {p["partition"]: p["leader"] for p in meta["partitions"]}

    def under_replicated(self) -> int:
        """Partitions of all topics with fewer in-sync replicas than replicas (0 once a
        restarted node has caught up)."""
        metas = _in_thread(lambda admin: admin.describe_topics(), self._live())
        return sum(len(p["isr"]) < len(p["replicas"]) for m in metas for p in m["partitions"])


def start_kafka_cluster(workdir: Path, nodes: int = 3, *, wait: float = 120) -> KafkaCluster:
    """Format and start `nodes` KRaft nodes under `workdir`; return once every one serves
    (a probe topic with three replicas has a leader, and each node lists itself)."""
    java, classpath = java_binary(), kafka_classpath()
    flat = free_ports(2 * nodes)
    ports = {n: (flat[2 * n - 2], flat[2 * n - 1]) for n in range(1, nodes + 1)}
    members = {n: _node(n, ports, workdir.resolve() / f"node-{n}", [java, classpath], wait) for n in ports}
    cluster = cluster_id()  # one for all: they form one cluster
    with concurrent.futures.ThreadPoolExecutor(nodes) as pool:  # a JVM each: in parallel
        list(pool.map(lambda node: node.format(cluster), members.values()))
    started = KafkaCluster(members)
    try:
        for member in members.values():  # no node is ready before a majority of them runs
            member.child.spawn()
        for member in members.values():
            member.child.await_ready()
    except BaseException:
        started.stop(timeout=10)
        raise
    return started


def _node(
    node_id: int, ports: dict[int, tuple[int, int]], home: Path, java: list[str], wait: float
) -> KafkaNode:
    """Node `node_id`'s files under `home` and its (not yet started) process; `java`: the
    java binary and Kafka's classpath."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    props, log4j = home / "server.properties", home / "log4j.properties"
    props.write_text(node_properties(node_id, ports, home / "data"))
    log4j.write_text(LOG4J.format(path=home / "logs" / "server.log"))
    jvm = jvm_argv(java[0], java[1], home, log4j, *JVM_OPTIONS)
    port, cport = ports[node_id]
    bootstrap = f"127.0.0.1:{port}"
    child = Child(
        f"Kafka node {node_id} at {bootstrap}",
        [*jvm, "kafka.Kafka", str(props)],
        home / "kafka.out",
        lambda: kafka_ready(bootstrap, min(len(ports), 3), node_id),
        wait,
        logs=[home / "logs" / "server.log"],
    )
    return KafkaNode(node_id, port, cport, home, child, jvm)


def _in_thread(call: Callable[[Any], Awaitable[T]], bootstrap: str, attempts: int = 20) -> T:
    """`call(admin)` with an admin client of its own, on a fresh event loop in a thread (so
    that it also works when called inside a running loop). A node just killed stays in the
    metadata until it is fenced, and a request may go to it: such a call is tried again."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def run() -> T:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        await admin.start()
        try:
            return await call(admin)
        finally:
            await admin.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        for attempt in range(1, attempts + 1):
            try:
                return pool.submit(asyncio.run, run()).result()
            except KafkaError:
                if attempt == attempts:
                    raise
                time.sleep(0.25)  # back off before the next try
    raise AssertionError("unreachable")
