"""Shared fixtures: a real Kafka broker and redis-server for the whole session (and a
real Redis Cluster, started the first time a test asks for it), and factories for
per-test settings and worker processes (helpers: tests/support).

Set KAFKA_BOOTSTRAP_SERVERS / REDIS_URL to run against existing services.

`report("line")` has a line printed in the "reliability figures" section at the end of the
run (pytest captures a test's own output): what the fault-injection tests measured.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream.devtools.redis import LocalRedisCluster
from stream.devtools.runner import WorkerProcess
from stream.settings import Settings
from tests.support import redis_target
from tests.support.kafka import create_topics
from tests.support.settings import run_settings

FIGURES: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Call `report("line")` to have the line printed in the run's "reliability figures"."""
    return FIGURES.append


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Kafka bootstrap servers, Redis URL) of the session's services."""
    from stream.devtools.services import local_services

    with local_services(tmp_path_factory.mktemp("services")) as (bootstrap, redis_url):
        yield bootstrap, redis_url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A Redis Cluster of 3 primaries and 3 replicas, for the session's tests that ask."""
    from stream.devtools.redis import start_redis_cluster

    cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_backend(request: pytest.FixtureRequest, services: tuple[str, str]) -> dict[str, object]:
    """The Redis settings of a test: the session's redis-server, or (parametrised
    "cluster", `tests.support.redis_target.SINGLE_AND_CLUSTER`) its Redis Cluster, named by
    every node's URL (the seeds), under the prefix `CLUSTER_PREFIX`."""
    if getattr(request, "param", "single") == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        return {
            "redis_url": cluster.seeds,
            "redis_cluster": True,
            "redis_prefix": redis_target.CLUSTER_PREFIX,
        }
    return {"redis_url": services[1]}


@pytest.fixture
def make_settings(services: tuple[str, str], redis_backend: dict[str, object]) -> Callable[..., Settings]:
    """Settings with this test's own app id, topic prefix and web port; Redis flushed."""
    bootstrap, redis_url = services
    run = f"test-{uuid.uuid4().hex[:8]}"
    with redis_target.client(run_settings(bootstrap, redis_url, run, **redis_backend)) as client:
        client.flushdb()
    return lambda **overrides: run_settings(bootstrap, redis_url, run, **(redis_backend | overrides))


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
