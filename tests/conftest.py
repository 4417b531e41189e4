"""Shared fixtures: a real Kafka broker and redis-server for the whole session,
and factories for per-test settings and worker processes.

Set KAFKA_BOOTSTRAP_SERVERS / REDIS_URL to run against existing services.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream.settings import Settings


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from stream.infra import local_services

    with local_services(tmp_path_factory.mktemp("services")) as (bootstrap, redis_url):
        yield bootstrap, redis_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make_settings(services: tuple[str, str]) -> Callable[..., Settings]:
    """Settings with this test's own app id, topic prefix and web port; Redis flushed."""
    bootstrap, redis_url = services
    run = uuid.uuid4().hex[:8]

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "kafka_bootstrap_servers": bootstrap,
            "redis_url": redis_url,
            "app_id": f"test-{run}",
            "topic_prefix": f"t{run}.",
            "partitions": 4,
            "web_port": free_port(),
            "batch_within_ms": 20,
            "log_level": "info",  # readiness is read from the "Worker ready" line
        }
        values.update(overrides)
        return Settings.from_env({}, **values)

    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return make


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `touchstream` process use these settings."""
    from stream.settings import describe

    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHSTREAM_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("REDIS_URL", None)
    for name, _default, _help in describe():
        value = getattr(settings, name.removeprefix("TOUCHSTREAM_").lower())
        env[name] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return env


class WorkerProcess:
    """`touchstream worker` as a real child process."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                env=settings_env(self.settings), stdout=out, stderr=subprocess.STDOUT,
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            if "Worker ready" in self.output():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log.read_bytes()[self.log_offset :].decode(errors="replace")

    def stop(self, sig: int = 15, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        from stream.topics import ensure_topics

        asyncio.run(ensure_topics(settings))
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
        errors = [line for line in worker.output().splitlines() if "Traceback" in line or "[ERROR]" in line]
        # a crash inside an agent is restarted by Faust's supervisor: fail the test loudly instead
        assert not [e for e in errors if "GroupCoordinator" not in e], worker.output()[-5000:]


def metric(settings: Settings, name: str) -> float:
    """Sum of a metric's samples on a worker's /metrics page."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))
