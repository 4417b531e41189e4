"""Real Kafka (KRaft) and Redis on free loopback ports, without Docker: tests, demo, benchmarks.

`python -m stream.devtools.services` (`make services`) prints `export ...` lines and runs
until Ctrl-C/SIGTERM. `local_services` starts only what the environment does not name.
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
from stream.devtools.redis import start_redis
from stream.errors import InfraError


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


@contextlib.contextmanager
def local_services(workdir: Path | None = None) -> Iterator[tuple[str, str]]:
    """Yield `(bootstrap, redis_url)`, starting whatever the environment lacks.

    `TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS` / `KAFKA_BOOTSTRAP_SERVERS` and
    `TOUCHSTREAM_REDIS_URL` / `REDIS_URL` name existing services to use
    instead. What was started is stopped on exit, however the block exits.
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
            server = start_redis(workdir / "redis")
            stack.callback(server.stop)
            url = server.url
        yield bootstrap, url


def main(argv: Sequence[str] | None = None) -> None:
    """Start Kafka and redis, print `export` lines, run until Ctrl-C/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m stream.devtools.services", description=main.__doc__)
    parser.add_argument("--workdir", type=Path, help="keep data here (default: a temp dir)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds like Ctrl-C
    try:
        with local_services(args.workdir) as (bootstrap, url):
            print(f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
            print(f"export REDIS_URL={url}", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    except InfraError as exc:
        sys.exit(f"touchstream services: {exc}")


if __name__ == "__main__":
    main()
