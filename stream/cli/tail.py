"""`touchstream tail TOPIC`: print a topic's records, one per line, as kcat's consumer does.

It follows the topic from its end (`--from-beginning`: from its start) until Ctrl-C, which
ends it quietly with exit status 130; `-n N` stops after N records, `--until-end` at the end
offsets read at the start (reading from the start: an empty topic ends at once). `--key` and
`--partition` keep only some records. No consumer group: nothing is committed.

A broker that cannot be reached is one error line naming the address (after aiokafka's
bounded connection attempt), exit status 2; so is a topic or partition that does not exist.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any, BinaryIO

import orjson

from stream.adapters.kafka import clients
from stream.cli.broker import client_options, kafka_errors
from stream.settings import Settings

FORMATS = ("value", "json")
EXAMPLES = """\
examples:
  touchstream tail attribution.conversions
  touchstream tail attribution.models --until-end > snapshot.jsonl
  touchstream tail touchpoints.raw --from-beginning --key c-42 -n 10 --format json
  touchstream tail touchpoints.dlq --until-end | jq -r .reason_code | sort | uniq -c

--format json prints one object per record:
  {"key": "c-42", "partition": 3, "offset": 17, "timestamp": 1767225600000,
   "headers": [["name", "value"]], "value": "{...}"}
key, header values and value as UTF-8 text (undecodable bytes replaced), null when absent.
Ctrl-C ends tail with exit status 130.
"""


def _at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if number < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {number}")
        return number

    return parse


def add_parser(sub: Any) -> None:
    tail = sub.add_parser(
        "tail",
        help="print a topic's records, one per line (kcat-like: -n, --until-end, --key, --format json)",
        description="Print a topic's records, one per line. It follows the topic from its end\n"
        "(--from-beginning: its start) until Ctrl-C (exit status 130), N records (-n),\n"
        "or the end offsets read at the start (--until-end). No consumer group: nothing\n"
        "is committed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tail.add_argument("topic", help="full topic name, e.g. attribution.conversions")
    tail.add_argument("--from-beginning", action="store_true", help="start at the first offset, not the end")
    tail.add_argument("-n", "--count", type=_at_least(1), metavar="N", help="stop after N records printed")
    tail.add_argument(
        "--until-end",
        action="store_true",
        help="read from the beginning and stop at the end offsets read at the start",
    )
    tail.add_argument("--key", metavar="K", help="only the records whose key is K")
    tail.add_argument("--partition", type=_at_least(0), metavar="P", help="only partition P")
    tail.add_argument(
        "--format", choices=FORMATS, default="value", help="value: the value as one line (default); json"
    )


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def record_line(msg: Any, fmt: str) -> bytes:
    """One record as one output line (without its newline): its value, or (`json`) an object
    with key, partition, offset, timestamp, headers and value."""
    if fmt == "value":
        return (_text(msg.value) or "").encode()
    return orjson.dumps(
        {
            "key": _text(msg.key),
            "partition": msg.partition,
            "offset": msg.offset,
            "timestamp": msg.timestamp,
            "headers": [[name, _text(value)] for name, value in msg.headers or ()],
            "value": _text(msg.value),
        }
    )


async def follow(settings: Settings, args: argparse.Namespace, out: BinaryIO) -> None:
    """The records wanted, written to `out` one line each until the count or the end."""
    key = None if args.key is None else args.key.encode()
    left = args.count
    stream = clients.records(
        settings.kafka_bootstrap_servers,
        args.topic,
        from_beginning=args.from_beginning or args.until_end,
        partition=args.partition,
        until_end=args.until_end,
        options=client_options(settings),
    )
    async with contextlib.aclosing(stream):
        async for msg in stream:
            if key is not None and msg.key != key:
                continue
            out.write(record_line(msg, args.format) + b"\n")
            out.flush()
            if left is not None:
                left -= 1
                if not left:
                    return


def run(settings: Settings, args: argparse.Namespace) -> int:
    with kafka_errors(settings):
        asyncio.run(follow(settings, args, sys.stdout.buffer))
    return 0
