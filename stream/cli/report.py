"""`touchstream report`: channel, campaign and keyword reports from the live counters.

Reads the report counters the workers keep in Redis (or, with `--events FILE.jsonl`,
computes them offline from raw events with the same core code) and prints, per value of
one dimension, cost, interactions and per model the credited conversions, value,
revenue, CPA and ROAS; per conversion type the count, value, mean touchpoints and mean
days to conversion; the top converting paths (docs/reports.md).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from stream.core.counters import DIMENSIONS
from stream.errors import CliError
from stream.settings import Settings, redact_url

FORMATS = ("table", "json", "csv")


def add_parser(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="channel / campaign / keyword report: cost, CPA, ROAS, revenue",
        epilog="""\
examples:
  touchstream report
  touchstream report --from 2026-01-01 --to 2026-01-31 --by campaign --models linear,markov
  touchstream report --events events.jsonl --format csv > report.csv
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "--from", dest="first", metavar="YYYY-MM-DD", help="first day (default: 6 days before --to)"
    )
    report.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day, UTC (default: today)")
    report.add_argument("--by", choices=DIMENSIONS, default="channel", help="dimension of the rows")
    report.add_argument("--models", metavar="A,B", help="models to show (default: those computed)")
    report.add_argument("--currency", help="currency of the report (default: TOUCHSTREAM_CURRENCY)")
    report.add_argument("--top-paths", type=int, default=10, metavar="N", help="converting paths shown")
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument("--events", type=Path, help="compute it offline from raw events (JSONL) instead")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from stream.core.report import parse_query, report_of

    try:
        query = parse_query(
            args.first,
            args.last,
            datetime.now(UTC).date(),
            by=args.by,
            models=args.models,
            default_models=settings.config().models,
            currency=args.currency or settings.currency,
            top_paths=args.top_paths,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    days = query.days
    counters = _offline(settings, args.events, days) if args.events else _live(settings, days)
    report = report_of(counters, query)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    elif args.format == "csv":
        _csv(report)
    else:
        _tables(report)
    return 0


def _live(settings: Settings, days: list[str]) -> dict[str, int]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisClusterException, ResponseError

    from stream.adapters.redis.aggregates import PartitionStore
    from stream.adapters.redis.connection import Ttls, connect

    async def read() -> dict[str, int]:
        redis = connect(settings.redis_url, cluster=settings.redis_cluster)
        try:
            store = PartitionStore(redis, Ttls(0, 0, 0), prefix=settings.redis_prefix)
            return await store.report_counters(settings.partitions, days)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(read())
    except (RedisConnectionError, TimeoutError, OSError, ResponseError, RedisClusterException) as exc:
        where = redact_url(settings.redis_url)
        raise CliError(f"cannot read the report counters from Redis at {where}: {exc}") from None


def _offline(settings: Settings, events: Path, days: list[str]) -> dict[str, int]:
    from stream.offline.replay import EventReplay

    if not events.is_file():
        raise CliError(f"no such file: {events}")
    replay = EventReplay(
        settings.config(),
        settings.limits(),
        int(time.time() * 1000),
        settings.partitions,
        reports=settings.report_limits(),
    )
    with events.open("rb") as lines:
        for _value in replay.run(lines):
            pass
    replay.finish()
    return replay.report_counters(days)


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _tables(report: dict[str, Any]) -> None:
    """One table per model (each fits an 80-column terminal), then the summaries."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(80, Console().width))
    period = f"{report['from']} to {report['to']}, {report['currency']}"
    for model in report["models"]:
        table = Table(title=f"{model}: by {report['by']}, {period}", title_justify="left", box=box.SIMPLE)
        table.add_column(report["by"], overflow="fold", min_width=14, max_width=24)
        for name in ("cost", "inter.", "conv.", "value+rev.", "CPA", "ROAS"):
            table.add_column(name, justify="right")
        for row in report["rows"]:
            m = row["models"][model]
            table.add_row(
                row["group"],
                _money(row["cost"]),
                f"{row['interactions']:,}",
                f"{m['conversions']:,.2f}",
                _money(m["value"] + m["revenue"]),
                _money(m["cpa"]),
                _money(m["roas"]),
            )
        console.print(table)
    _summary(console, report)


def _summary(console: Any, report: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    types = Table(title="conversion types", title_justify="left", box=box.SIMPLE)
    for name in ("conversion", "count", "value", "touches (mean)", "days (mean)"):
        types.add_column(name, justify="left" if name == "conversion" else "right")
    for t in report["conversion_types"]:
        days = "-" if t["mean_days_to_conversion"] is None else f"{t['mean_days_to_conversion']:.1f}"
        types.add_row(
            t["conversion"], f"{t['count']:,}", _money(t["value"]), f"{t['mean_touchpoints']:.1f}", days
        )
    console.print(types)
    paths = Table(title="top converting paths", title_justify="left", box=box.SIMPLE)
    for name in ("path", "conversions", "value"):
        paths.add_column(name, justify="left" if name == "path" else "right", overflow="fold")
    for p in report["top_paths"]:
        paths.add_row(p["path"], f"{p['conversions']:,}", _money(p["value"]))
    console.print(paths)
    if report["other_currencies"]:
        others = ", ".join(f"{c}: {n}" for c, n in report["other_currencies"].items())
        console.print(f"left out, events in other currencies: {others}")


def _csv(report: dict[str, Any]) -> None:
    """One line per dimension value and model."""
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(
        [
            report["by"],
            "cost",
            "interactions",
            "ctr",
            "model",
            "conversions",
            "value",
            "revenue",
            "cpa",
            "roas",
        ]
    )
    for row in report["rows"]:
        for model, m in row["models"].items():
            out.writerow(
                [row["group"], row["cost"], row["interactions"], _blank(row["ctr"]), model]
                + [_blank(m[k]) for k in ("conversions", "value", "revenue", "cpa", "roas")]
            )


def _blank(x: float | None) -> str:
    return "" if x is None else repr(x)
