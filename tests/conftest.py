"""Shared fixtures: a real Kafka broker and redis-server for the whole session,
and factories for per-test settings and worker processes (helpers: tests/support).

Set KAFKA_BOOTSTRAP_SERVERS / REDIS_URL to run against existing services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from stream.devtools.runner import WorkerProcess
from stream.settings import Settings
from tests.support.kafka import create_topics
from tests.support.settings import run_settings


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Kafka bootstrap servers, Redis URL) of the session's services."""
    from stream.devtools.services import local_services

    with local_services(tmp_path_factory.mktemp("services")) as (bootstrap, redis_url):
        yield bootstrap, redis_url


@pytest.fixture
def make_settings(services: tuple[str, str]) -> Callable[..., Settings]:
    """Settings with this test's own app id, topic prefix and web port; Redis flushed."""
    bootstrap, redis_url = services
    run = f"test-{uuid.uuid4().hex[:8]}"
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return lambda **overrides: run_settings(bootstrap, redis_url, run, **overrides)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    """Start a `touchstream worker` (its topics created first); every one is stopped at the
    end and the test fails if any logged an error."""
    workers: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        create_topics(settings)
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
        errors = [line for line in worker.output().splitlines() if "Traceback" in line or "[ERROR]" in line]
        # a crash inside an agent is restarted by Faust's supervisor: fail the test loudly instead
        assert not [e for e in errors if "GroupCoordinator" not in e], worker.output()[-5000:]
