"""`touchstream simulate`: publish realistic synthetic journeys to touchpoints.raw (or a file)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from stream.adapters.kafka import clients
from stream.adapters.kafka.security import aiokafka_options
from stream.cli.topics import create_missing
from stream.core.topics import RAW
from stream.devtools.simulate import generate
from stream.settings import Settings


def add_parser(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="publish realistic synthetic journeys to touchpoints.raw",
        epilog="""\
examples:
  touchstream simulate --customers 200 --rate 100
  touchstream simulate --customers 1000 --seed 3 --output events.jsonl
  touchstream simulate --customers 100 --output /dev/stdout | touchstream attribute --events -
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("--customers", type=int, default=1000)
    sim.add_argument("--rate", type=float, default=0.0, help="events per second (0 = as fast as possible)")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--output", type=Path, help="write JSONL to this file instead of Kafka")


def run(settings: Settings, args: argparse.Namespace) -> int:
    events = generate(args.customers, args.seed, int(time.time() * 1000))
    if args.output:
        with args.output.open("wb") as out:
            for event in events:
                out.write(orjson.dumps(event) + b"\n")
        return 0
    create_missing(settings)
    records = (clients.event_record(e) for e in events)
    sent = asyncio.run(
        clients.produce(
            settings.kafka_bootstrap_servers,
            settings.topic(RAW),
            records,
            args.rate,
            options=aiokafka_options(settings),
        )
    )
    print(f"published {sent} events to {settings.topic(RAW)}")
    return 0
