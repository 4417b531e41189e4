"""`touchstream tail TOPIC`: print a topic's values, one per line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from stream.adapters.kafka import clients
from stream.adapters.kafka.security import aiokafka_options
from stream.settings import Settings


def add_parser(sub: Any) -> None:
    tail = sub.add_parser("tail", help="print a topic's values")
    tail.add_argument("topic", help="full topic name, e.g. attribution.conversions")
    tail.add_argument("--from-beginning", action="store_true")


def run(settings: Settings, args: argparse.Namespace) -> int:
    async def follow() -> None:
        async for msg in clients.records(
            settings.kafka_bootstrap_servers,
            args.topic,
            from_beginning=args.from_beginning,
            options=aiokafka_options(settings),
        ):
            sys.stdout.write((msg.value or b"").decode(errors="replace") + "\n")
            sys.stdout.flush()

    asyncio.run(follow())
    return 0
