"""`touchstream worker`: run a worker (handlers, timers, web server); run more to scale out."""

from __future__ import annotations

import argparse
import asyncio
import gc
from typing import Any

from stream.adapters.kafka.topics import ensure_topics
from stream.settings import Settings


def add_parser(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run a worker (handlers, timers, /metrics); run more to scale out")
    worker.add_argument("--web-port", type=int, help="overrides TOUCHSTREAM_WEB_PORT")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from stream.runtime.app import create_app

    if args.web_port:
        settings = Settings.from_env(web_port=args.web_port)
    asyncio.run(ensure_topics(settings))
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
