"""Shared fixtures: a real Kafka broker and redis-server for the whole session,
and factories for per-test settings and worker processes.

Set KAFKA_BOOTSTRAP_SERVERS / REDIS_URL to run against existing services.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream.runner import WorkerProcess
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
            "log_level": "info",  # readiness is read from the "Worker ready" line
        }
        values.update(overrides)
        return Settings.from_env({}, **values)

    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return make


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
