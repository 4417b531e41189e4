"""`touchstream` command line: worker, demo, simulate, produce, tail.

Settings come from `TOUCHSTREAM_*` variables (listed in `--help`); a few
flags override them per call.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from stream import kafka_io
from stream import settings as settings_mod
from stream.security import aiokafka_options
from stream.settings import Settings, SettingsError, unknown_variables
from stream.simulate import generate
from stream.topics import RAW, ensure_topics

# per-call overrides of `touchstream attribute`: flag -> settings variable
PER_CALL = {
    "models": "TOUCHSTREAM_MODELS",
    "position-weights": "TOUCHSTREAM_POSITION_WEIGHTS",
    "half-life": "TOUCHSTREAM_HALF_LIFE_MS",
    "session-timeout": "TOUCHSTREAM_SESSION_TIMEOUT_MS",
    "lookback": "TOUCHSTREAM_LOOKBACK_MS",
    "markov-order": "TOUCHSTREAM_MARKOV_ORDER",
}


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
    worker = sub.add_parser("worker", help="run a worker (handlers, timers, /metrics); run more to scale out")
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
    attribute = sub.add_parser(
        "attribute", help="batch mode: the stream's models over a JSONL event file or an aggregated paths CSV"
    )
    source = attribute.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--events", type=Path, help="raw events, one JSON per line: prints one attribution per line"
    )
    source.add_argument(
        "--paths",
        type=Path,
        help="CSV path,total_conversions,total_conversion_value,total_null: channel totals",
    )
    attribute.add_argument(
        "--format", choices=("json", "table"), default="json", help="--paths output format"
    )
    attribute.add_argument(
        "--snapshot",
        type=Path,
        help="--events: a model snapshot (as on attribution.models) for markov/shapley",
    )
    attribute.add_argument(
        "--model-out", type=Path, help="--events: write the markov/shapley snapshot learned from the events"
    )
    for flag, variable in PER_CALL.items():
        attribute.add_argument(f"--{flag}", metavar="VALUE", help=f"overrides {variable}")
    tail = sub.add_parser("tail", help="print a topic's values")
    tail.add_argument("topic", help="full topic name, e.g. attribution.conversions")
    tail.add_argument("--from-beginning", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        for name in unknown_variables(os.environ):
            print(f"touchstream: warning: {name} is not a setting (ignored)", file=sys.stderr)
        return int(COMMANDS[args.command](settings, args) or 0)
    except (CliError, SettingsError) as exc:
        print(f"touchstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `touchstream ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from stream.app import create_app

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
        kafka_io.produce(
            settings.kafka_bootstrap_servers,
            settings.topic(RAW),
            records,
            args.rate,
            options=aiokafka_options(settings),
        )
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
            yield kafka_io.raw_key(doc), value


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise CliError(f"no such file: {args.file}")
    topic = args.topic or settings.topic(RAW)
    asyncio.run(ensure_topics(settings))
    sent = asyncio.run(
        kafka_io.produce(
            settings.kafka_bootstrap_servers,
            topic,
            jsonl_records(args.file),
            options=aiokafka_options(settings),
        )
    )
    print(f"published {sent} values to {topic}")
    return 0


def cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> None:
        async for msg in kafka_io.records(
            settings.kafka_bootstrap_servers,
            args.topic,
            from_beginning=args.from_beginning,
            options=aiokafka_options(settings),
        ):
            sys.stdout.write((msg.value or b"").decode(errors="replace") + "\n")
            sys.stdout.flush()

    asyncio.run(run())
    return 0


def cmd_attribute(settings: Settings, args: argparse.Namespace) -> int:
    from stream import batch
    from stream.attribution import UnknownModelError
    from stream.person import Config

    overrides = {}
    for flag, variable in PER_CALL.items():
        text = getattr(args, flag.replace("-", "_"))
        if text is not None:
            name = variable.removeprefix("TOUCHSTREAM_").lower()
            overrides[name] = settings_mod.parse_field(name, text)
    settings = dataclasses.replace(settings, **overrides)
    try:
        config = Config.from_settings(settings)
    except UnknownModelError as exc:
        raise CliError(str(exc)) from None
    source = args.events or args.paths
    if not source.is_file():
        raise CliError(f"no such file: {source}")
    if args.events:
        return _attribute_events(settings, config, args)
    with _progress_open(source, "rt") as text:
        try:
            models = (*config.models, *config.data_driven)
            totals = batch.path_totals(batch.read_paths(text), models, config.params, settings.markov_order)
        except batch.InputError as exc:
            raise CliError(f"{source}: {exc}") from None
    if args.format == "json":
        sys.stdout.buffer.write(
            orjson.dumps(totals, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        )
    else:
        sys.stdout.write(batch.format_table(totals))
    return 0


def _attribute_events(settings: Settings, config: Any, args: argparse.Namespace) -> int:
    from stream.attribution import snapshot as snapshots
    from stream.batch import EventReplay
    from stream.events import Limits

    snapshot = None
    if args.snapshot:
        try:
            snapshot = snapshots.Snapshot.from_doc(orjson.loads(args.snapshot.read_bytes()))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise CliError(f"{args.snapshot}: not a model snapshot ({exc})") from None
    limits = Limits(settings.max_value_bytes, settings.max_context_bytes, settings.max_future_skew_ms)
    replay = EventReplay(config, limits, int(time.time() * 1000), settings.partitions, snapshot)
    with _progress_open(args.events, "rb") as lines:
        out = sys.stdout.buffer
        for value in replay.run(lines):
            out.write(value + b"\n")
    stats = replay.finish()
    for r in replay.rejected:
        print(f"{args.events}:{r.line}: skipped ({r.reason_code}): {r.error}", file=sys.stderr)
    if args.model_out:
        learned = snapshots.build(stats, settings.markov_order).doc() if stats else {"snapshot_id": None}
        args.model_out.write_bytes(orjson.dumps(learned, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
    return 0


def _progress_open(path: Path, mode: str):  # type: ignore[no-untyped-def]
    """Open a file with a rich progress bar on stderr (shown only on a terminal)."""
    import rich.progress
    from rich.console import Console

    console = Console(stderr=True)
    return rich.progress.open(
        path, mode, description=path.name, console=console, disable=not console.is_terminal
    )


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from stream.demo import run_demo

    return run_demo(settings, customers=args.customers, rate=args.rate)


COMMANDS = {
    "worker": cmd_worker,
    "demo": cmd_demo,
    "simulate": cmd_simulate,
    "produce": cmd_produce,
    "tail": cmd_tail,
    "attribute": cmd_attribute,
}

if __name__ == "__main__":
    sys.exit(main())
