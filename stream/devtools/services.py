"""Real Kafka (KRaft) and Redis on free loopback ports, without Docker: tests, demo, benchmarks.

`python -m stream.devtools.services` (`make services`) prints `export ...` lines and runs
until Ctrl-C/SIGTERM; with `--redis-cluster`, Redis is a local Redis Cluster (3 primaries,
3 replicas) and `TOUCHSTREAM_REDIS_CLUSTER=true` is exported too. `local_services` starts
only what the environment does not name.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from stream.devtools.kafka import start_kafka
from stream.devtools.redis import start_redis, start_redis_cluster
from stream.errors import InfraError


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


@contextlib.contextmanager
def local_services(workdir: Path | None = None, *, redis_cluster: bool = False) -> Iterator[tuple[str, str]]:
    """Yield `(bootstrap, redis_url)`, starting whatever the environment lacks.

    `TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS` / `KAFKA_BOOTSTRAP_SERVERS` and
    `TOUCHSTREAM_REDIS_URL` / `REDIS_URL` name existing services to use
    instead. `redis_cluster`: Redis, when started, is a Redis Cluster (`redis_url` is a
    seed node's). What was started is stopped on exit, however the block exits.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="touchstream-")))
        bootstrap = _env("TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap is None:
            broker = start_kafka(workdir / "kafka")
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        url = _env("TOUCHSTREAM_REDIS_URL", "REDIS_URL")
        if url is None:
            server = (
                start_redis_cluster(workdir / "redis-cluster")
                if redis_cluster
                else start_redis(workdir / "redis")
            )
            stack.callback(server.stop)
            url = server.url
        yield bootstrap, url


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
        with local_services(args.workdir, redis_cluster=args.redis_cluster) as (bootstrap, url):
            print(f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
            if args.redis_cluster:
                print("export TOUCHSTREAM_REDIS_CLUSTER=true")
            print(f"export REDIS_URL={url}", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    except InfraError as exc:
        sys.exit(f"touchstream services: {exc}")


if __name__ == "__main__":
    main()
