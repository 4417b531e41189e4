"""`touchstream topics create|list` against the session's real broker; an unreachable one."""

from __future__ import annotations

import asyncio
import http.client
import re
import subprocess
import sys
import urllib.request

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream.adapters.kafka.topics import all_topics, persons_topic
from stream.core.topics import RAW
from stream.devtools.redis import start_redis
from stream.devtools.runner import settings_env
from stream.settings import Settings
from tests.support.cli import touchstream
from tests.support.settings import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def broker_view(settings: Settings) -> dict[str, tuple[int, int, dict[str, str]]]:
    """What the broker itself says of the settings' topics: partitions, replicas of each
    partition (the largest count), and their topic configs."""
    names = all_topics(settings)

    async def run() -> dict[str, tuple[int, int, dict[str, str]]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            # every topic's metadata: asking for some by name would auto-create them here
            everything = await admin.describe_topics()
            metadata = {t["topic"]: t["partitions"] for t in everything if t["topic"] in names}
            if not metadata:
                return {}
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in metadata]
            )
        finally:
            await admin.close()
        configs = {
            resource["resource_name"]: {
                entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]
            }
            for resource in response.to_object()["resources"]
        }
        return {
            name: (len(parts), max(len(p["replicas"]) for p in parts), configs[name])
            for name, parts in metadata.items()
            if parts
        }

    return asyncio.run(run())


def table(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


def test_create_then_exists_and_list(make_settings) -> None:
    settings = make_settings(partitions=3)
    names = all_topics(settings)
    missing = touchstream(settings, "topics", "list")
    assert missing.returncode == 0, missing.stderr
    assert table(missing.stdout) == [["missing", name] for name in names]

    first = touchstream(settings, "topics", "create", "--retention-ms", "2d", "--min-insync-replicas", "1")
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert table(first.stdout) == [["created", n, "partitions=3", "replication_factor=1"] for n in names]
    on_broker = broker_view(settings)
    assert sorted(on_broker) == sorted(names)
    for name, (partitions, replicas, configs) in on_broker.items():
        assert (partitions, replicas) == (3, 1), name
        assert configs["retention.ms"] == str(2 * 86_400_000), name
        assert configs["min.insync.replicas"] == "1", name
        inputs = (settings.topic(RAW), persons_topic(settings))
        assert (configs["message.timestamp.type"] == "LogAppendTime") == (name in inputs), name

    second = touchstream(settings, "topics", "create")
    assert (second.returncode, second.stderr) == (0, ""), second.stderr
    assert table(second.stdout) == [["exists", n, "partitions=3", "replication_factor=1"] for n in names]
    assert broker_view(settings) == on_broker  # left as they were

    # settings that differ from what the broker holds are pointed out, nothing is changed
    other = touchstream(settings, "topics", "list", env={"TOUCHSTREAM_PARTITIONS": "4"})
    assert other.returncode == 0, other.stderr
    assert all(line.endswith("(TOUCHSTREAM_PARTITIONS is 4)") for line in other.stdout.splitlines())
    assert broker_view(settings) == on_broker


def test_a_replication_factor_the_cluster_cannot_hold_is_one_error_line(make_settings) -> None:
    """The session's broker is a single node: 2 replicas are refused, and said so (the
    worker's topic creation takes the same setting and raises the same error)."""
    settings = make_settings(replication_factor=2)
    done = touchstream(settings, "topics", "create")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("touchstream: error: Kafka at ") and done.stderr.count("\n") == 1
    assert "InvalidReplicationFactorError" in done.stderr and "Traceback" not in done.stderr
    assert broker_view(settings) == {}


def test_an_unreachable_broker_is_one_error_line() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings.from_env({}, kafka_bootstrap_servers=address)
    for action in ("create", "list"):
        done = touchstream(settings, "topics", action, timeout=60)
        assert (done.returncode, done.stdout) == (2, ""), action
        assert done.stderr == f"touchstream: error: cannot reach Kafka at {address} " + (
            "(TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS)\n"
        )


def test_a_worker_waits_for_its_broker() -> None:
    """A worker started before Kafka says so, one line per attempt, and keeps trying."""
    address = f"127.0.0.1:{free_port()}"
    settings = Settings.from_env({}, kafka_bootstrap_servers=address)
    worker = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "worker"],
        env=settings_env(settings),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [worker.stderr.readline() for _ in range(3)]  # at 0, 1 and 3 s
        assert worker.poll() is None
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    waiting = f"touchstream: waiting for Kafka at {address} (TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS): "
    said_attempts(lines, waiting + "no broker answers")


def test_bad_flags_are_one_error_line() -> None:
    settings = Settings.from_env({}, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    cases = [
        (["--retention-ms", "forever"], "--retention-ms: not a duration"),
        (["--retention-ms", "0"], "--retention-ms must be positive"),
        (["--min-insync-replicas", "2"], "between 1 and TOUCHSTREAM_REPLICATION_FACTOR (1)"),
    ]
    for args, why in cases:
        done = touchstream(settings, "topics", "create", *args)
        assert (done.returncode, done.stdout) == (2, ""), args
        assert done.stderr.count("\n") == 1 and why in done.stderr, done.stderr


def test_a_worker_waits_for_redis_and_starts_when_it_comes(make_settings, tmp_path) -> None:
    """A worker started before Redis says so, one line per attempt (connection refused),
    answers no /ready meanwhile, and becomes ready once Redis listens."""
    port = free_port()
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0")
    worker = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "worker"],
        env=settings_env(settings),
        stderr=subprocess.PIPE,
        text=True,
    )
    server = None
    try:
        lines = [worker.stderr.readline() for _ in range(2)]  # at about 0 and 1 s
        assert worker.poll() is None and not ready(settings)
        server = start_redis(tmp_path / "redis", port=port)
        wait_until(lambda: ready(settings), timeout=60, what="the worker ready once Redis listens")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if server is not None:
            server.stop()
    waiting = f"touchstream: waiting for Redis at redis://127.0.0.1:{port}/0 (TOUCHSTREAM_REDIS_URL): "
    said_attempts(lines, waiting + "connection refused")


def said_attempts(lines: list[str], waiting: str) -> None:
    """Each line says `waiting`, its attempt (1, 2, …) and the next delay: 1, 2, 4 s less at
    most 20 % of jitter."""
    for attempt, line in enumerate(lines, start=1):
        said = re.fullmatch(re.escape(waiting) + r" \(attempt (\d+), next in ([\d.]+) s\)\n", line)
        assert said, line
        assert int(said[1]) == attempt and 0.8 * 2 ** (attempt - 1) <= float(said[2]) <= 2 ** (attempt - 1)


def ready(settings: Settings) -> bool:
    """The worker's /ready answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/ready", timeout=2) as answer:
            return answer.status == 200
    except (OSError, http.client.HTTPException):
        return False
