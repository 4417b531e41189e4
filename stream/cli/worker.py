"""`touchstream worker`: run a worker (handlers, timers, web server); run more to scale out."""

from __future__ import annotations

import argparse
import asyncio
import gc
from typing import Any

from stream.cli.startup import services
from stream.cli.topics import create_missing
from stream.settings import Settings


def add_parser(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="run a worker (handlers, timers, /metrics); run more to scale out",
        epilog="""\
examples:
  touchstream worker
  TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 TOUCHSTREAM_REDIS_URL=redis://redis:6379/0 \\
    touchstream worker --web-port 6067
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("--web-port", type=int, help="overrides TOUCHSTREAM_WEB_PORT")


def provision(settings: Settings) -> None:
    """The topics, the missing ones created (TOUCHSTREAM_PARTITIONS, _REPLICATION_FACTOR), and
    Redis answering; a service not up yet is waited for, one line per attempt
    (`stream.cli.startup`); a refusal is one line and exit 2."""
    services(settings, lambda: create_missing(settings))


def run(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from stream.runtime.app import create_app

    if args.web_port:
        settings = Settings.from_env(web_port=args.web_port)
    provision(settings)
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    # The hot path allocates many short-lived containers and almost no cycles: collect the
    # young generation far less often, and keep what exists at start out of full collections
    # (bench/suite.py: CPU per event and p99 latency).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    Worker(app, loglevel=settings.log_level.upper()).execute_from_commandline()
    return 0
