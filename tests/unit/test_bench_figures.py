"""The benchmark's own arithmetic: which contenders a command line runs, the Redis Cluster's
nodes read off `CLUSTER NODES`, the Kafka bytes read off a broker's log dir, and the
per-unit figures printed for capacity planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.contenders import topic_bytes
from bench.measure import topic_log_bytes
from bench.redis_nodes import node_roles, node_url
from bench.report import capacity_lines, ratios
from bench.suite import parse_args

CLUSTER_NODES = (
    "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n"
    "b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922\n"
    "c3 127.0.0.1:7002@17002 master,fail - 0 0 3 connected\n"
    "d4 127.0.0.1:7003@17003 slave a1 0 0 1 connected\n"
    "e5 127.0.0.1:7004@17004,node-e slave b2 0 0 2 connected\n"
)


def test_the_contenders_fit_the_redis() -> None:
    assert "naive" in parse_args([]).only and "replicas" not in parse_args([]).only
    cluster = parse_args(["--redis-cluster"]).only
    assert "replicas" in cluster and "naive" not in cluster
    assert parse_args(["--redis-cluster", "--only", "touchstream,replicas"]).only == {
        "touchstream",
        "replicas",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["--only", "replicas"],
        ["--redis-cluster", "--only", "naive"],
        ["--only", "nope"],
        ["--only", "latency"],
    ],
)
def test_a_contender_that_cannot_run_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2


def test_cluster_nodes_give_the_healthy_primaries_and_replicas() -> None:
    assert node_roles(CLUSTER_NODES) == {
        "127.0.0.1:7000": "master",
        "127.0.0.1:7001": "master",
        "127.0.0.1:7003": "slave",
        "127.0.0.1:7004": "slave",
    }


def test_a_node_is_reached_with_the_seeds_credentials() -> None:
    assert node_url("redis://u:p@10.0.0.1:7000/0", "10.0.0.2:7001") == "redis://u:p@10.0.0.2:7001/0"
    assert node_url("rediss://10.0.0.1:7000", "10.0.0.2:7001") == "rediss://10.0.0.2:7001"


def test_kafka_bytes_are_the_record_logs_of_the_runs_topics(tmp_path: Path) -> None:
    files = {
        "b-r1.touchpoints.raw-0/00000000000000000000.log": 300,
        "b-r1.touchpoints.raw-0/00000000000000000000.index": 10_485_760,  # preallocated: not data
        "b-r1.touchpoints.raw-1/00000000000000000000.log": 200,
        "b-r1.touchpoints.raw-1/00000000000000000123.log": 50,
        "b-r1.bench-r1-touchpoints.persons-0/00000000000000000000.log": 40,
        "b-r2.touchpoints.raw-0/00000000000000000000.log": 999,  # another run
        "__consumer_offsets-3/00000000000000000000.log": 999,
    }
    for name, size in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * size)
    assert topic_log_bytes(tmp_path, "b-r1.") == {
        "b-r1.touchpoints.raw": 550,
        "b-r1.bench-r1-touchpoints.persons": 40,
    }
    assert topic_bytes(tmp_path, "b-r1.") == {"touchpoints.raw": 550, "touchpoints.persons": 40}


RUN = {
    "workers": 1,
    "events_per_s": 2000.0,
    "worker_cpu_s_per_100k": 40.0,  # 400 µs per event
    "redis_cpu_s_per_100k": 4.0,
    "redis_replica_cpu_s_per_100k": 2.0,
    "redis_replicas": 0,
    "kafka_bytes": {"touchpoints.raw": 40_000, "attribution.credits": 160_000, "touchpoints.dlq": 0},
    "memory": {
        "persons": 50,
        "bytes_per_person": 1100.0,
        "state_bytes_per_person": 800.0,
        "conversion_bytes": 15_000,
        "conversions": 20,
        "shared_bytes": 5000,
        "aggregate_bytes": {"report": 4000, "paths": 1000},
        "report_days": 9,
    },
}


def test_capacity_figures_are_per_event_per_person_and_per_core() -> None:
    lines = capacity_lines({"events": 100, "redis_cluster": True, "redis_primaries": 3}, RUN)
    assert lines == [
        "capacity, from 1 worker(s) on Redis Cluster, 3 primaries, 100 events, 50 persons:",
        "  worker: 400 us CPU per event = 2,500 events/s per worker core",
        "  redis CPU: 4.00 s per 100k events on the primaries"
        " (40.0 us/event = 25,000 events/s per Redis core); replicas 2.00 s per 100k",
        "  redis memory: 1,100 B per person, all its keys (800 B without stored conversions;"
        " 750 B per stored conversion, 0.40 per person)",
        "  redis shared: 5,000 B, of which per partition report 4,000, paths 1,000"
        " (report counters of 9 days)",
        "  kafka: 2,000 B on disk per input event (one replica):"
        " attribution.credits 1,600, touchpoints.raw 400",
    ]


def test_replica_runs_compare_to_the_first() -> None:
    waited = RUN | {"redis_replicas": 1, "events_per_s": 1500.0, "worker_cpu_s_per_100k": 50.0}
    assert ratios(waited, RUN) == "; vs replicas 0: events/s x0.750, worker CPU/event x1.250"
