"""Batch mode over aggregated paths (`touchstream attribute --paths`): channel totals per model.

Reads files in the common format `path,total_conversions,total_conversion_value,total_null`
(path written `a > b > c`). Heuristic models credit each row as `total_conversions`
conversions of its path; data-driven models learn from every row (converting and null)
and give each channel its total as the literature defines it (`Model.totals`): `markov`
the total conversions × RE_c / Σ RE and the total value × REv_c / Σ REv, with each
channel's `removal_effect` and `value_removal_effect`; `shapley` φ_c of the conversions
and of the value game; `shapley_ordered` the same with the breakdown by position
(`positions`, `value_positions`: φ_c^1, φ_c^2, …).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from stream.attribution import MODELS
from stream.attribution import snapshot as snapshots
from stream.attribution.paths import PathCount
from stream.core.config import DAY_MS, ModelParams
from stream.core.records import AttributionInput, Touchpoint
from stream.errors import InputError


@dataclass(frozen=True, slots=True)
class PathRow:
    path: tuple[str, ...]
    conversions: float
    value: float
    nulls: float


def read_paths(text: Iterable[str]) -> Iterator[PathRow]:
    """Rows of a `path,total_conversions,total_conversion_value,total_null` CSV (header
    optional). An error names the line a bad row ends on (`line N: …`)."""
    reader = csv.reader(text)
    for index, row in enumerate(reader):
        number = reader.line_num
        if not row or (index == 0 and row[0].strip().lower() == "path"):
            continue
        if len(row) != 4:
            raise InputError(
                f"line {number}: expected 4 columns (path,conversions,value,null), got {len(row)}"
            )
        path = tuple(part.strip() for part in row[0].split(">"))
        if not all(path):
            raise InputError(f"line {number}: empty channel in path {row[0]!r}")
        try:
            conversions, value, nulls = (float(cell) for cell in row[1:])
        except ValueError:
            raise InputError(f"line {number}: counts must be numbers, got {row[1:]}") from None
        if not all(math.isfinite(x) and x >= 0 for x in (conversions, value, nulls)):
            raise InputError(f"line {number}: counts must be finite and not negative, got {row[1:]}")
        if value and not conversions:
            raise InputError(f"line {number}: a conversion value ({row[2].strip()}) without conversions")
        yield PathRow(path, conversions, value, nulls)


def path_input(path: tuple[str, ...]) -> AttributionInput:
    """A path with no timestamps as a conversion's input: touches one day apart, the last
    one a day before the conversion; no lead or opportunity position."""
    n = len(path)
    touches = tuple(Touchpoint(ts=(i - n) * DAY_MS, channel=c, session_id=str(i)) for i, c in enumerate(path))
    return AttributionInput(touches, conversion_ts=0)


Totals = dict[str, dict[str, dict[str, Any]]]  # model -> channel -> {"conversions", "value", …}


def path_totals(
    rows: Iterable[PathRow], models: Iterable[str], params: ModelParams, markov_order: int = 1
) -> Totals:
    """Channel totals of every named model in one pass over the rows.

    Heuristic models credit each row as `conversions` conversions of its path; the
    data-driven ones learn the stream's snapshot from every row (converting and null) and
    give each channel its `Model.totals` (see the module docstring).
    """
    names = tuple(models)
    stats: dict[tuple[str, ...], PathCount] = {}

    def collect(row: PathRow) -> PathRow:
        count = PathCount(row.conversions, row.value, row.nulls)
        stats[row.path] = stats[row.path] + count if row.path in stats else count
        return row

    learned = [name for name in names if name in MODELS and MODELS[name].needs_snapshot]
    totals = heuristic_totals((collect(r) for r in rows) if learned else rows, names, params)
    if learned:
        snapshot = snapshots.build(stats, markov_order)
        for name in learned:
            channel_totals = MODELS[name].totals
            assert channel_totals is not None
            totals[name] = channel_totals(stats, snapshot)
    return {name: totals[name] for name in names if name in totals}


def heuristic_totals(rows: Iterable[PathRow], models: Iterable[str], params: ModelParams) -> Totals:
    """Heuristic channel totals: each row is `conversions` conversions of its path."""
    names = [m for m in models if m in MODELS and not MODELS[m].needs_snapshot]
    totals: Totals = {name: {} for name in names}
    for row in rows:
        if row.conversions == 0 and row.value == 0:
            continue
        inp = path_input(row.path)
        for name in names:
            channels = totals[name]
            shares = MODELS[name].shares
            assert shares is not None
            for touch, share in zip(inp.touches, shares(inp, params), strict=True):
                cell = channels.setdefault(touch.channel, {"conversions": 0.0, "value": 0.0})
                cell["conversions"] += share * row.conversions
                cell["value"] += share * row.value
    return totals


def format_table(totals: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Channel totals as a plain-text table, one block per model."""
    out = io.StringIO()
    for model, channels in totals.items():
        out.write(f"{model}\n")
        for channel, cell in sorted(channels.items(), key=lambda kv: -kv[1]["conversions"]):
            out.write(f"  {channel:<20} {cell['conversions']:>14.4f} {cell['value']:>16.2f}\n")
    return out.getvalue()
