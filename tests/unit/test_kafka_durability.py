"""What makes a write durable on a replicated cluster, checked without a broker: the local
cluster's node configs (stream/devtools/kafka_cluster.py) and the worker's producer
(acks=all, idempotent; stream/adapters/kafka/producer.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stream.devtools.kafka_cluster import node_properties, replication

PORTS = {1: (9001, 9101), 2: (9002, 9102), 3: (9003, 9103)}


def parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@pytest.mark.parametrize(("nodes", "replicas", "insync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_topics_default_to_three_replicas_and_all_but_one_in_sync(nodes, replicas, insync) -> None:
    settings = replication(nodes)
    assert settings["default.replication.factor"] == settings["offsets.topic.replication.factor"] == replicas
    assert settings["transaction.state.log.replication.factor"] == replicas
    assert settings["min.insync.replicas"] == settings["transaction.state.log.min.isr"] == insync


def test_every_node_is_a_voter_of_one_quorum_with_ports_of_its_own() -> None:
    configs = {n: parse(node_properties(n, PORTS, Path(f"/data/{n}"))) for n in PORTS}
    voters = "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    for n, config in configs.items():
        assert config["process.roles"] == "broker,controller"
        assert config["node.id"] == str(n)
        assert config["controller.quorum.voters"] == voters
        assert config["log.dirs"] == f"/data/{n}"
        assert config["listeners"] == f"PLAINTEXT://127.0.0.1:{9000 + n},CONTROLLER://127.0.0.1:{9100 + n}"
        assert config["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{9000 + n}"
        assert config["min.insync.replicas"] == "2"
        assert config["unclean.leader.election.enable"] == "false"
        # a killed node is fenced within seconds, before the default 9 s
        assert int(config["broker.session.timeout.ms"]) == 6000


def test_the_workers_producer_waits_for_every_in_sync_replica_and_is_idempotent() -> None:
    """Built (not started) in a fresh interpreter, as tests/unit/test_faust_contract.py does."""
    script = textwrap.dedent("""
        import asyncio
        from stream.adapters.kafka.producer import IdempotentProducer
        from stream.runtime.app import faust_app
        from stream.runtime.metrics import Metrics
        from stream.settings import Settings
        from prometheus_client import CollectorRegistry

        async def main():
            settings = Settings.from_env({}, kafka_bootstrap_servers="127.0.0.1:1")
            app = faust_app(settings, Metrics.create(CollectorRegistry()))
            assert type(app.producer) is IdempotentProducer
            producer = app.producer._new_producer()
            assert producer._txn_manager is not None  # aiokafka's idempotence
            assert producer._txn_manager.transactional_id is None  # not a transaction
            assert producer._sender._acks == -1  # all

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
