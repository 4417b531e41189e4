"""The reliability suite prints its figures at the end of the run (pytest captures test output).

`kafka_cluster`: three KRaft nodes of the module's own (stream/devtools/kafka_cluster.py),
for tests that kill and restart brokers of a replicated cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stream.devtools.kafka_cluster import KafkaCluster, start_kafka_cluster

FIGURES: list[str] = []


@pytest.fixture
def report():
    """Call `report("line")` to have the line printed in the run's summary."""
    return FIGURES.append


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A 3-node Kafka cluster (each node a broker and a controller) for the module."""
    cluster = start_kafka_cluster(tmp_path_factory.mktemp("kafka-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
