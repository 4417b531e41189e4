"""`touchstream attribute`: the stream's models in batch mode, over an event file or a paths CSV.

`--events FILE.jsonl` prints one `attribution.conversions` value per conversion, byte for
byte what the stream emits; `--paths FILE.csv` prints channel totals per model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from stream import settings as settings_mod
from stream.core.config import Config
from stream.errors import CliError, InputError
from stream.settings import Settings

# per-call overrides: flag -> settings variable
PER_CALL = {
    "models": "TOUCHSTREAM_MODELS",
    "position-weights": "TOUCHSTREAM_POSITION_WEIGHTS",
    "half-life": "TOUCHSTREAM_HALF_LIFE_MS",
    "session-timeout": "TOUCHSTREAM_SESSION_TIMEOUT_MS",
    "lookback": "TOUCHSTREAM_LOOKBACK_MS",
    "markov-order": "TOUCHSTREAM_MARKOV_ORDER",
}


def add_parser(sub: Any) -> None:
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


def run(settings: Settings, args: argparse.Namespace) -> int:
    overrides = {}
    for flag, variable in PER_CALL.items():
        text = getattr(args, flag.replace("-", "_"))
        if text is not None:
            name = variable.removeprefix("TOUCHSTREAM_").lower()
            overrides[name] = settings_mod.parse_field(name, text)
    settings = dataclasses.replace(settings, **overrides)
    config = settings.config()
    source = args.events or args.paths
    if not source.is_file():
        raise CliError(f"no such file: {source}")
    if args.events:
        return _events(settings, config, args)
    return _paths(settings, config, args)


def _paths(settings: Settings, config: Config, args: argparse.Namespace) -> int:
    from stream.offline.paths import format_table, path_totals, read_paths

    with _progress_open(args.paths, "rt") as text:
        try:
            totals = path_totals(read_paths(text), config.models, config.params, settings.markov_order)
        except InputError as exc:
            raise CliError(f"{args.paths}: {exc}") from None
    if args.format == "json":
        sys.stdout.buffer.write(
            orjson.dumps(totals, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        )
    else:
        sys.stdout.write(format_table(totals))
    return 0


def _events(settings: Settings, config: Config, args: argparse.Namespace) -> int:
    from stream.attribution import snapshot as snapshots
    from stream.offline.replay import EventReplay

    snapshot = None
    if args.snapshot:
        try:
            snapshot = snapshots.Snapshot.from_doc(orjson.loads(args.snapshot.read_bytes()))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise CliError(f"{args.snapshot}: not a model snapshot ({exc})") from None
    replay = EventReplay(config, settings.limits(), int(time.time() * 1000), settings.partitions, snapshot)
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
