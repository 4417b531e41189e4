"""`touchstream produce FILE`: publish a JSONL file to touchpoints.raw, one value per line."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from stream.adapters.kafka import clients
from stream.adapters.kafka.security import aiokafka_options
from stream.cli.topics import create_missing
from stream.core.topics import RAW
from stream.errors import CliError
from stream.settings import Settings


def add_parser(sub: Any) -> None:
    produce = sub.add_parser("produce", help="publish a JSONL file to touchpoints.raw (one value per line)")
    produce.add_argument("file", type=Path)
    produce.add_argument("--topic", help="topic name (default: the raw topic)")


def jsonl_records(path: Path) -> Iterator[clients.Record]:
    """Each non-empty line as one raw value, keyed by its person id when it parses."""
    with path.open("rb") as lines:
        for line in lines:
            value = line.rstrip(b"\r\n")
            if not value:
                continue
            try:
                doc = orjson.loads(value)
            except orjson.JSONDecodeError:
                doc = None
            yield clients.raw_key(doc), value


def run(settings: Settings, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise CliError(f"no such file: {args.file}")
    topic = args.topic or settings.topic(RAW)
    create_missing(settings)
    sent = asyncio.run(
        clients.produce(
            settings.kafka_bootstrap_servers,
            topic,
            jsonl_records(args.file),
            options=aiokafka_options(settings),
        )
    )
    print(f"published {sent} values to {topic}")
    return 0
