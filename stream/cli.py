"""`touchstream` command line: worker, demo, simulate, produce, tail.

Settings come from `TOUCHSTREAM_*` variables (listed in `--help`); a few
flags override them per call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from stream import kafka_io
from stream import settings as settings_mod
from stream.settings import Settings, SettingsError
from stream.simulate import generate
from stream.topics import RAW, ensure_topics


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _env_help() -> str:
    rows = settings_mod.describe()
    width = max(len(name) for name, _, _ in rows)
    lines = [f"  {name:<{width}}  {help_} (default: {default or '-'})" for name, default, help_ in rows]
    return "environment:\n" + "\n".join(lines) + "\n  KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are accepted too."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchstream",
        description="Real-time marketing touchpoint attribution.",
        epilog=_env_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run a Faust worker (all agents); run more to scale out")
    worker.add_argument("--web-port", type=int, help="overrides TOUCHSTREAM_WEB_PORT")
    demo = sub.add_parser("demo", help="start broker, Redis, worker and simulator; print live attribution")
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--rate", type=float, default=300.0, help="events per second")
    sim = sub.add_parser("simulate", help="publish realistic synthetic journeys to touchpoints.raw")
    sim.add_argument("--customers", type=int, default=1000)
    sim.add_argument("--rate", type=float, default=0.0, help="events per second (0 = as fast as possible)")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--output", type=Path, help="write JSONL to this file instead of Kafka")
    produce = sub.add_parser("produce", help="publish a JSONL file to touchpoints.raw (one value per line)")
    produce.add_argument("file", type=Path)
    produce.add_argument("--topic", help="topic name (default: the raw topic)")
    tail = sub.add_parser("tail", help="print a topic's values")
    tail.add_argument("topic", help="full topic name, e.g. attribution.conversions")
    tail.add_argument("--from-beginning", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(COMMANDS[args.command](settings, args) or 0)
    except (CliError, SettingsError) as exc:
        print(f"touchstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from stream.app import create_app

    if args.web_port:
        settings = Settings.from_env(web_port=args.web_port)
    asyncio.run(ensure_topics(settings))
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    Worker(app, loglevel=settings.log_level.upper()).execute_from_commandline()
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    events = generate(args.customers, args.seed, int(time.time() * 1000))
    if args.output:
        with args.output.open("wb") as out:
            for event in events:
                out.write(orjson.dumps(event) + b"\n")
        return 0
    asyncio.run(ensure_topics(settings))
    records = (kafka_io.event_record(e) for e in events)
    sent = asyncio.run(
        kafka_io.produce(settings.kafka_bootstrap_servers, settings.topic(RAW), records, args.rate)
    )
    print(f"published {sent} events to {settings.topic(RAW)}")
    return 0


def jsonl_records(path: Path) -> Iterator[kafka_io.Record]:
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
            key = (doc.get("customer_id") or doc.get("anonymous_id")) if isinstance(doc, dict) else None
            yield (key.encode() if isinstance(key, str) else None), value


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise CliError(f"no such file: {args.file}")
    topic = args.topic or settings.topic(RAW)
    asyncio.run(ensure_topics(settings))
    sent = asyncio.run(kafka_io.produce(settings.kafka_bootstrap_servers, topic, jsonl_records(args.file)))
    print(f"published {sent} values to {topic}")
    return 0


def cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> None:
        async for msg in kafka_io.records(
            settings.kafka_bootstrap_servers, args.topic, from_beginning=args.from_beginning
        ):
            sys.stdout.write((msg.value or b"").decode(errors="replace") + "\n")
            sys.stdout.flush()

    asyncio.run(run())
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from stream.demo import run_demo

    return run_demo(settings, customers=args.customers, rate=args.rate)


COMMANDS = {
    "worker": cmd_worker,
    "demo": cmd_demo,
    "simulate": cmd_simulate,
    "produce": cmd_produce,
    "tail": cmd_tail,
}

if __name__ == "__main__":
    sys.exit(main())
