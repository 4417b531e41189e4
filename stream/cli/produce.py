"""`touchstream produce FILE`: publish JSON lines to touchpoints.raw, one value per line.

FILE is `-` (standard input) or any readable path (a pipe, a FIFO, `<(zcat events.jsonl.gz)`);
lines are published as they arrive, so `produce -` can sit at the end of a pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, BinaryIO

import orjson

from stream.adapters.kafka import clients
from stream.cli.broker import client_options, kafka_errors
from stream.cli.inputs import chunked_lines, open_input
from stream.cli.topics import create_missing
from stream.core.topics import RAW
from stream.settings import Settings

EXAMPLES = """\
examples:
  touchstream produce events.jsonl
  zcat events.jsonl.gz | touchstream produce -
  touchstream tail touchpoints.dlq --until-end | jq -r .raw | touchstream produce -
"""


def add_parser(sub: Any) -> None:
    produce = sub.add_parser(
        "produce",
        help="publish JSON lines to touchpoints.raw (one value per line)",
        description="Publish each non-empty line as one value, keyed by its person id when it\n"
        "parses (customer_id, else anonymous_id); a line that is not JSON is published as\n"
        "it is. Lines of a pipe are published as they arrive.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    produce.add_argument("file", metavar="FILE", help="JSON lines: a path, a pipe, or - for standard input")
    produce.add_argument("--topic", help="topic name (default: the raw topic)")


def jsonl_records(lines: Iterable[bytes]) -> Iterator[clients.Record]:
    """Each non-empty line as one raw value, keyed by its person id when it parses; a UTF-8
    byte-order mark (a file saved by some editors) is not part of the value."""
    for line in lines:
        value = line.rstrip(b"\r\n").removeprefix(b"\xef\xbb\xbf")
        if not value:
            continue
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = None
        yield clients.raw_key(doc), value


async def _records(file: BinaryIO) -> AsyncIterator[clients.Record]:
    async for lines in chunked_lines(file):
        for record in jsonl_records(lines):
            yield record


def run(settings: Settings, args: argparse.Namespace) -> int:
    topic = args.topic or settings.topic(RAW)
    with open_input(args.file) as file:
        create_missing(settings)
        records = _records(file)
        with kafka_errors(settings):
            sent = asyncio.run(
                clients.produce(
                    settings.kafka_bootstrap_servers, topic, records, options=client_options(settings)
                )
            )
    print(f"published {sent} values to {topic}")
    return 0
