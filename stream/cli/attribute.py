"""`touchstream attribute`: the stream's models in batch mode, over an event file or a paths CSV.

`--events FILE.jsonl` prints one `attribution.conversions` value per conversion, byte for
byte what the stream emits; `--paths FILE.csv` prints channel totals per model. Either
reads `-` (standard input) or any readable path: a pipe, a FIFO, `<(zcat paths.csv.gz)`.
`--snapshot` and `--model-out` files hold `attribution.models` values (`stream.cli.snapshots`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from stream import settings as settings_mod
from stream.cli.inputs import STDIN, display_name, input_error, open_input, open_output, text_lines
from stream.core.config import Config
from stream.errors import CliError, InputError
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.attribution.paths import PathStats

# per-call overrides: flag -> settings variable
PER_CALL = {
    "models": "TOUCHSTREAM_MODELS",
    "position-weights": "TOUCHSTREAM_POSITION_WEIGHTS",
    "half-life": "TOUCHSTREAM_HALF_LIFE_MS",
    "session-timeout": "TOUCHSTREAM_SESSION_TIMEOUT_MS",
    "lookback": "TOUCHSTREAM_LOOKBACK_MS",
    "markov-order": "TOUCHSTREAM_MARKOV_ORDER",
}
EXAMPLES = """\
examples:
  touchstream attribute --events events.jsonl > conversions.jsonl
  zcat events.jsonl.gz | touchstream attribute --events - --model-out snapshot.jsonl
  touchstream attribute --paths <(zcat paths.csv.gz) --format table --models linear,markov
  touchstream tail attribution.models --until-end > snapshot.jsonl
  touchstream attribute --events events.jsonl --snapshot snapshot.jsonl

A snapshot file is JSON lines of attribution.models values (stream/schemas/model.schema.json),
as --model-out writes them and `touchstream tail attribution.models --until-end` prints them;
one JSON object or a JSON array of values is read too, and the last value of each model counts.
"""


def add_parser(sub: Any) -> None:
    attribute = sub.add_parser(
        "attribute",
        help="batch mode: the stream's models over a JSONL event file or an aggregated paths CSV",
        description="--events prints one attribution.conversions value per conversion, byte for\n"
        "byte what the stream emits; --paths prints channel totals per model. FILE is -\n"
        "(standard input) or any readable path: a file, a pipe, a FIFO, <(zcat paths.csv.gz).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = attribute.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--events", metavar="FILE", help="raw events, one JSON per line (- : stdin): one attribution per line"
    )
    source.add_argument(
        "--paths",
        metavar="FILE",
        help="CSV path,total_conversions,total_conversion_value,total_null (- : stdin): channel totals",
    )
    attribute.add_argument(
        "--format", choices=("json", "table"), default="json", help="--paths output format"
    )
    attribute.add_argument(
        "--snapshot",
        metavar="FILE",
        help="--events: the markov/shapley shares from these attribution.models values",
    )
    attribute.add_argument(
        "--model-out",
        metavar="FILE",
        help="--events: write the snapshot learned from the events, as attribution.models values",
    )
    for flag, variable in PER_CALL.items():
        attribute.add_argument(f"--{flag}", metavar="VALUE", help=f"overrides {variable}")


def overridden(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with this call's flags (`PER_CALL`) in place of their variables."""
    overrides = {}
    for flag, variable in PER_CALL.items():
        text = getattr(args, flag.replace("-", "_"))
        if text is not None:
            name = variable.removeprefix("TOUCHSTREAM_").lower()
            overrides[name] = settings_mod.parse_field(name, text)
    return dataclasses.replace(settings, **overrides)


def run(settings: Settings, args: argparse.Namespace) -> int:
    settings = overridden(settings, args)
    config = settings.config()
    if args.events is None:
        if args.snapshot or args.model_out:
            raise CliError("--snapshot and --model-out go with --events, not --paths")
        return _paths(settings, config, args)
    if args.events == STDIN and args.snapshot == STDIN:
        raise CliError("--events and --snapshot cannot both read standard input (-)")
    for read in (args.events, args.snapshot):
        if args.model_out and read and _same_file(args.model_out, read):
            raise CliError(f"--model-out {args.model_out} would overwrite the input it reads")
    return _events(settings, config, args)


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one existing file (`-` names none)."""
    try:
        return STDIN not in (a, b) and os.path.samefile(a, b)
    except OSError:
        return False


def _paths(settings: Settings, config: Config, args: argparse.Namespace) -> int:
    from stream.offline.paths import format_table, path_totals, read_paths

    with open_input(args.paths) as lines:
        try:
            rows = read_paths(text_lines(lines))
            totals = path_totals(rows, config.models, config.params, settings.markov_order)
        except InputError as exc:
            raise input_error(display_name(args.paths), exc) from None
    if args.format == "json":
        sys.stdout.buffer.write(
            orjson.dumps(totals, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        )
    else:
        sys.stdout.write(format_table(totals))
    return 0


def _events(settings: Settings, config: Config, args: argparse.Namespace) -> int:
    from stream.cli.snapshots import check_holds, read_snapshot
    from stream.offline.replay import EventReplay

    snapshot = None
    if args.snapshot:
        with open_input(args.snapshot, progress=False) as file:
            snapshot = read_snapshot(display_name(args.snapshot), file.read())
        check_holds(display_name(args.snapshot), snapshot, config.models)
    with contextlib.ExitStack() as files:
        lines = files.enter_context(open_input(args.events))
        model_out = files.enter_context(open_output(args.model_out)) if args.model_out else None
        replay = EventReplay(
            config, settings.limits(), int(time.time() * 1000), settings.partitions, snapshot
        )
        out = sys.stdout.buffer
        for value in replay.run(lines):
            out.write(value + b"\n")
        stats = replay.finish()
        for r in replay.rejected:
            print(
                f"{display_name(args.events)}:{r.line}: skipped ({r.reason_code}): {r.error}", file=sys.stderr
            )
        if model_out:
            _write_model(model_out, args.model_out, stats, settings.markov_order)
    return 0


def _write_model(out: BinaryIO, name: str, stats: PathStats, markov_order: int) -> None:
    """The snapshot learned, as the worker would publish it; none when no journey converted
    or expired (as the worker, which publishes none then)."""
    from stream.attribution import snapshot as snapshots
    from stream.attribution.paths import seen
    from stream.cli.snapshots import published_lines

    if seen(stats):
        out.write(published_lines(snapshots.build(stats, markov_order)))
    else:
        print(f"touchstream: warning: no journey converted or expired: {name} is empty", file=sys.stderr)
