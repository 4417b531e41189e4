"""`touchstream` command line: one module per command, each with `add_parser` and `run`.

Settings come from `TOUCHSTREAM_*` variables (listed in `--help`); a few flags override
them per call. A user error — a bad flag too — is one line on stderr and exit status 2,
never a traceback; Ctrl-C ends a command with exit status 130. Every command's `--help`
ends with examples.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from stream import __version__
from stream import settings as settings_mod
from stream.cli import attribute, demo, produce, report, simulate, tail, topics, worker
from stream.errors import CliError, SettingsError
from stream.settings import Settings, unknown_variables

COMMANDS = {
    "worker": worker,
    "demo": demo,
    "simulate": simulate,
    "produce": produce,
    "tail": tail,
    "topics": topics,
    "attribute": attribute,
    "report": report,
}


EXAMPLES = """\
examples:
  touchstream demo
  touchstream topics create && touchstream worker
  touchstream simulate --customers 200 && touchstream tail attribution.conversions -n 5
  touchstream attribute --paths <(zcat paths.csv.gz) --format table
"""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, pointing at `--help`."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _env_help() -> str:
    rows = settings_mod.describe()
    width = max(len(name) for name, _, _ in rows)
    lines = [f"  {name:<{width}}  {help_} (default: {default or '-'})" for name, default, help_ in rows]
    return "environment:\n" + "\n".join(lines) + "\n  KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are accepted too."


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="touchstream",
        description="Real-time marketing touchpoint attribution.",
        epilog=EXAMPLES + "\n" + _env_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"touchstream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        for name in unknown_variables():
            print(f"touchstream: warning: {name} is not a setting (ignored)", file=sys.stderr)
        return int(COMMANDS[args.command].run(settings, args) or 0)
    except (CliError, SettingsError) as exc:
        print(f"touchstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `touchstream ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
