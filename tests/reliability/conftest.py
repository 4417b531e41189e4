"""`kafka_cluster`: three KRaft nodes of the module's own (stream/devtools/kafka_cluster.py),
for tests that kill and restart brokers of a replicated cluster.

The suite prints its figures at the end of the run through the `report` fixture of
tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stream.devtools.kafka_cluster import KafkaCluster, start_kafka_cluster


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A 3-node Kafka cluster (each node a broker and a controller) for the module."""
    cluster = start_kafka_cluster(tmp_path_factory.mktemp("kafka-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()
