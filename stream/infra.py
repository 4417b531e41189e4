"""Real Kafka (KRaft) and redis-server on free loopback ports, without Docker.

For integration tests, `touchstream demo` and benchmarks: `python -m
stream.infra` prints `export ...` lines and runs until Ctrl-C/SIGTERM. Kafka
jars are fetched once with Maven into `$TOUCHSTREAM_CACHE_DIR` (default
`~/.cache/touchstream/kafka-3.9.1`). Every child runs in its own process
group and is stopped at interpreter exit at the latest.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KAFKA_VERSION = "3.9.1"
PROBE_TOPIC = "__touchstream_probe"  # created by the Kafka readiness check
_MARKER = ".resolved"
_DEPENDENCIES = (
    ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    ("org.slf4j", "slf4j-reload4j", "1.7.36"),
    ("ch.qos.reload4j", "reload4j", "1.2.25"),
)
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>touchstream</groupId><artifactId>kafka-broker</artifactId><version>1</version>
<packaging>pom</packaging><dependencies>{}</dependencies></project>
""".format(
    "".join(
        f"\n<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in _DEPENDENCIES
    )
)
_LOG4J = """log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={path}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
"""
_BROKER_SETTINGS = {  # one node on a small (2-core) machine
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


class InfraError(RuntimeError):
    """A local service could not be resolved, started or reached."""


@dataclass(eq=False)  # identity equality: live children are kept in a set
class _Child:
    """A service process in its own process group, with a readiness check."""

    name: str
    argv: list[str]
    out: Path  # stdout+stderr of the process
    ready: Callable[[], bool]
    wait: float  # seconds to become ready
    logs: Sequence[Path] = ()  # further logs worth showing on failure
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Spawn, then poll `ready` until true; InfraError if it dies or times out."""
        with self.out.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not _LIVE:
            atexit.unregister(_stop_all)
            atexit.register(_stop_all)
        _LIVE.add(self)
        try:
            self._await_ready(time.monotonic() + self.wait)
        except BaseException:  # also Ctrl-C: never leave a half-started child
            self.stop(timeout=10)
            raise

    def _await_ready(self, deadline: float) -> None:
        assert self.popen is not None
        while not self.ready():
            if self.popen.poll() is not None:
                raise self.error(f"{self.name} exited with {self.popen.returncode}")
            if time.monotonic() > deadline:
                raise self.error(f"{self.name} not ready after {self.wait:.0f}s")
            time.sleep(0.1)

    def stop(self, timeout: float) -> None:
        """SIGTERM the process group, wait up to `timeout`, then SIGKILL it."""
        if self.popen is None or self not in _LIVE:
            return
        _killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        _killpg(self.popen.pid, signal.SIGKILL)  # stragglers left in the group
        _LIVE.discard(self)

    def error(self, what: str) -> InfraError:
        tails = "\n".join(_tail(p) for p in (self.out, *self.logs))
        return InfraError(f"{what}\n{tails}")


_LIVE: set[_Child] = set()


def _stop_all() -> None:
    for child in list(_LIVE):
        child.stop(timeout=10)


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"--- {path}: missing"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- tail of {path}:\n" + "\n".join(text)


def _free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (all sockets held open while choosing)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _which(tool: str) -> str:
    if path := shutil.which(tool):
        return path
    raise InfraError(f"`{tool}` is not on PATH")


class _Service:
    _child: _Child

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Process id (also the process group id); None before the first start."""
        return self._child.popen.pid if self._child.popen else None

    def restart(self) -> None:
        """Stop, then start again on the same port(s) and data; wait until ready."""
        self.stop()
        self._child.start()


# Kafka


def kafka_classpath(cache_dir: Path | None = None) -> str:
    """Java classpath (`<cache>/libs/*`) of Kafka, fetched with Maven on first use."""
    default = f"~/.cache/touchstream/kafka-{KAFKA_VERSION}"
    cache = cache_dir or Path(os.environ.get("TOUCHSTREAM_CACHE_DIR") or default)
    cache = cache.expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first runs fetch once
        if not (cache / _MARKER).exists():
            _fetch_with_maven(cache)
    return f"{cache / 'libs'}/*"


def _fetch_with_maven(cache: Path) -> None:
    mvn, libs = _which("mvn"), cache / "libs"
    shutil.rmtree(libs, ignore_errors=True)  # a partial earlier copy
    (cache / "pom.xml").write_text(_POM)
    print(f"touchstream: fetching Kafka {KAFKA_VERSION} with Maven into {cache}", file=sys.stderr)
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(cache / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise InfraError(f"mvn failed with exit code {done.returncode}:\n{tail}")
    (cache / _MARKER).write_text(KAFKA_VERSION + "\n")


@dataclass
class KafkaBroker(_Service):
    """A running single-node KRaft broker+controller; `restart` keeps its data."""

    bootstrap: str  # "127.0.0.1:PORT"
    workdir: Path
    _child: _Child = field(repr=False)
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
    java, classpath = _which("java"), kafka_classpath()
    workdir = workdir.resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    port, cport, sport = _free_ports(3)
    props, log4j = workdir / "server.properties", workdir / "log4j.properties"
    props.write_text(
        _server_properties(port, cport, workdir / "data", sport if sasl_users else None, sasl_users)
    )
    log4j.write_text(_LOG4J.format(path=workdir / "logs" / "server.log"))
    jvm = [
        java,
        "-Xms256m",
        "-Xmx768m",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{log4j}",
        f"-Dkafka.logs.dir={workdir / 'logs'}",
        "-cp",
        classpath,
    ]
    _format_storage(jvm, props, workdir / "data")
    bootstrap = f"127.0.0.1:{port}"
    child = _Child(
        f"Kafka at {bootstrap}",
        [*jvm, "kafka.Kafka", str(props)],
        workdir / "kafka.out",
        lambda: _kafka_ready(bootstrap),
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
        **_BROKER_SETTINGS,
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


def _format_storage(jvm: list[str], props: Path, data: Path) -> None:
    if (data / "meta.properties").exists():
        return  # formatted by an earlier start: keep its cluster id and data
    argv = [*jvm, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise InfraError(f"Kafka storage format failed:\n{done.stdout}{done.stderr}")


def _cluster_id() -> str:
    """What `StorageTool random-uuid` prints, without starting a JVM for it."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _kafka_ready(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as s:  # cheap check first: aiokafka logs refused connects
        s.settimeout(0.5)
        if s.connect_ex((host, int(port))) != 0:
            return False
    # a fresh loop in a thread, so this also works when called inside a loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _probe_kafka(bootstrap)).result()


async def _probe_kafka(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        created = await admin.create_topics([NewTopic(PROBE_TOPIC, 1, 1)])
        if any(err not in (0, 36) for _, err, *_ in created.topic_errors):  # 36: exists
            return False
        [topic] = await admin.describe_topics([PROBE_TOPIC])
        parts = topic["partitions"]
        return topic["error_code"] == 0 and bool(parts) and parts[0]["leader"] >= 0
    except Exception:  # any failure means "not ready yet"
        return False
    finally:
        await admin.close()


# Redis


@dataclass
class RedisServer(_Service):
    """A running redis-server bound to loopback; `restart` replays the AOF if on."""

    url: str  # "redis://127.0.0.1:PORT/0"
    workdir: Path
    _child: _Child = field(repr=False)

    def stop(self) -> None:
        """SIGTERM (no RDB save), wait, then SIGKILL."""
        self._child.stop(timeout=10)


def start_redis(
    workdir: Path, *, appendonly: bool = False, acl_user: tuple[str, str] | None = None
) -> RedisServer:
    """Start redis-server on a free loopback port; return once it answers PING.

    `appendonly=True` turns AOF on with `appendfsync everysec`. `acl_user=(name, password)`
    creates that ACL user with every permission and turns the passwordless default user
    off; `url` then carries the credentials.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    [port] = _free_ports(1)
    aof = ["yes", "--appendfsync", "everysec"] if appendonly else ["no"]
    argv = [
        _redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
        "--appendonly",
        *aof,
    ]
    auth = ""
    if acl_user:
        name, password = acl_user
        argv += ["--user", name, "on", f">{password}", "~*", "&*", "+@all", "--user", "default", "off"]
        auth = f"{name}:{password}@"
    url = f"redis://{auth}127.0.0.1:{port}/0"
    child = _Child(f"redis-server at {url}", argv, workdir / "redis.out", lambda: _redis_ready(url), wait=20)
    child.start()
    return RedisServer(url, workdir, child)


def _redis_binary() -> str:
    if path := shutil.which("redis-server"):
        return path
    if os.geteuid() != 0:
        raise InfraError("redis-server is not on PATH: apt-get install redis-server")
    cmd = "apt-get update -qq && apt-get install -y -qq redis-server"
    print(f"touchstream: redis-server missing, running: {cmd}", file=sys.stderr)
    subprocess.run(["sh", "-c", cmd], check=False)
    return _which("redis-server")


def _redis_ready(url: str) -> bool:
    import redis

    with redis.Redis.from_url(url, socket_timeout=1) as client:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


# Both


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


@contextlib.contextmanager
def local_services(workdir: Path | None = None) -> Iterator[tuple[str, str]]:
    """Yield `(bootstrap, redis_url)`, starting whatever the environment lacks.

    `TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS` / `KAFKA_BOOTSTRAP_SERVERS` and
    `TOUCHSTREAM_REDIS_URL` / `REDIS_URL` name existing services to use
    instead. What was started is stopped on exit, however the block exits.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="touchstream-")))
        bootstrap = _env("TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap is None:
            broker = start_kafka(workdir / "kafka")
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        url = _env("TOUCHSTREAM_REDIS_URL", "REDIS_URL")
        if url is None:
            server = start_redis(workdir / "redis")
            stack.callback(server.stop)
            url = server.url
        yield bootstrap, url


def main(argv: Sequence[str] | None = None) -> None:
    """Start Kafka and redis, print `export` lines, run until Ctrl-C/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m stream.infra", description=main.__doc__)
    parser.add_argument("--workdir", type=Path, help="keep data here (default: a temp dir)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds like Ctrl-C
    try:
        with local_services(args.workdir) as (bootstrap, url):
            print(f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
            print(f"export REDIS_URL={url}", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    except InfraError as exc:
        sys.exit(f"touchstream infra: {exc}")


if __name__ == "__main__":
    main()
