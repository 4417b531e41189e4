"""Real Kafka (KRaft) and Redis on free loopback ports, without Docker: tests, demo, benchmarks.

`python -m stream.devtools.services` (`make services`) prints `export ...` lines and runs
until Ctrl-C/SIGTERM; with `--redis-cluster`, Redis is a local Redis Cluster (3 primaries,
3 replicas) and `TOUCHSTREAM_REDIS_CLUSTER=true` is exported too, unless `REDIS_URL` names
an existing Redis (then none is started, and its kind is the environment's to say).
`local_services` and `started_services` start only what the environment does not name.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stream.devtools.kafka import start_kafka
from stream.devtools.redis import start_redis, start_redis_cluster
from stream.errors import InfraError


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


@dataclass(frozen=True)
class Services:
    """The services in use, and which of them were started here."""

    bootstrap: str
    redis_url: str  # a started Redis Cluster's every node, comma-separated (the seeds)
    redis_cluster: bool  # a Redis Cluster was started here
    redis_from_env: bool  # Redis is the environment's: nothing is known of its kind
    kafka_data: Path | None  # the started broker's log dir; None for the environment's Kafka


@contextlib.contextmanager
def started_services(workdir: Path | None = None, *, redis_cluster: bool = False) -> Iterator[Services]:
    """`Services`, starting whatever the environment lacks.

    `TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS` / `KAFKA_BOOTSTRAP_SERVERS` and
    `TOUCHSTREAM_REDIS_URL` / `REDIS_URL` name existing services to use
    instead. `redis_cluster`: Redis, when started, is a Redis Cluster (3 primaries, 3
    replicas). What was started is stopped on exit, however the block exits.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="touchstream-")))
        bootstrap, kafka_data = _env("TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"), None
        if bootstrap is None:
            broker = start_kafka(workdir / "kafka")
            stack.callback(broker.stop)
            bootstrap, kafka_data = broker.bootstrap, broker.workdir / "data"
        url = _env("TOUCHSTREAM_REDIS_URL", "REDIS_URL")
        if url is not None:
            yield Services(bootstrap, url, False, True, kafka_data)
        elif redis_cluster:
            cluster = start_redis_cluster(workdir / "redis-cluster")
            stack.callback(cluster.stop)
            yield Services(bootstrap, cluster.seeds, True, False, kafka_data)
        else:
            server = start_redis(workdir / "redis")
            stack.callback(server.stop)
            yield Services(bootstrap, server.url, False, False, kafka_data)


@contextlib.contextmanager
def local_services(workdir: Path | None = None, *, redis_cluster: bool = False) -> Iterator[tuple[str, str]]:
    """Yield `(bootstrap, redis_url)` of `started_services`."""
    with started_services(workdir, redis_cluster=redis_cluster) as services:
        yield services.bootstrap, services.redis_url


def exports(services: Services) -> list[str]:
    """The `export` lines that point a shell at `services`: the cluster flag only for a
    Redis Cluster started here (the environment's Redis is whatever it is)."""
    lines = [f"export KAFKA_BOOTSTRAP_SERVERS={services.bootstrap}"]
    if services.redis_cluster:
        lines.append("export TOUCHSTREAM_REDIS_CLUSTER=true")
    return [*lines, f"export REDIS_URL={services.redis_url}"]


def main(argv: Sequence[str] | None = None) -> None:
    """Start Kafka and redis, print `export` lines, run until Ctrl-C/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m stream.devtools.services", description=main.__doc__)
    parser.add_argument("--workdir", type=Path, help="keep data here (default: a temp dir)")
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a Redis Cluster (3 primaries, 3 replicas), not one server",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds like Ctrl-C
    try:
        with started_services(args.workdir, redis_cluster=args.redis_cluster) as services:
            if args.redis_cluster and services.redis_from_env:
                print("--redis-cluster: Redis is the environment's REDIS_URL; none started", file=sys.stderr)
            print("\n".join(exports(services)), flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    except InfraError as exc:
        sys.exit(f"touchstream services: {exc}")


if __name__ == "__main__":
    main()
