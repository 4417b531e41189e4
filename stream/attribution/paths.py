"""Aggregate path counts: what the data-driven models learn from (docs/architecture.md).

A *path* is the channels of one journey's touchpoints in time order, repeats
kept: `("seo", "email", "email")`. `PathStats` maps each path to a
`PathCount`: how many journeys with that path converted (`conversions`, with
their summed `value`) and how many expired without converting (`nulls`).

A path whose `conversions + nulls` is 0 counts as *not seen* by the models,
and so does the empty path `()`: it has no channel to learn about or to
credit. Neither adds channels, transitions, conversions nor value anywhere.

Also here: the per-conversion shares proportional to a channel weight (`markov`,
`shapley`), and the global channel totals (`markov`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stream.attribution.heuristic import linear
from stream.core.config import ModelParams
from stream.core.records import AttributionInput

__all__ = [
    "OTHER",
    "SEPARATOR",
    "VALUE_SCALE",
    "PathCount",
    "PathStats",
    "channels",
    "fold_tail",
    "format_path",
    "global_totals",
    "merge",
    "parse_path",
    "proportional_shares",
    "seen",
]

SEPARATOR = ">"
OTHER = "(other)"
VALUE_SCALE = 1_000_000  # path values are counted in integer micro-units: sums are exact


@dataclass(frozen=True, slots=True)
class PathCount:
    """Counts for one path. Every field is finite and >= 0 (checked)."""

    conversions: float = 0.0
    value: float = 0.0
    nulls: float = 0.0

    def __post_init__(self) -> None:
        for name in ("conversions", "value", "nulls"):
            x = getattr(self, name)
            if not (math.isfinite(x) and x >= 0):
                raise ValueError(f"PathCount.{name} must be finite and >= 0, got {x!r}")

    def __add__(self, other: PathCount) -> PathCount:
        if not isinstance(other, PathCount):
            return NotImplemented
        return PathCount(
            self.conversions + other.conversions, self.value + other.value, self.nulls + other.nulls
        )

    @property
    def journeys(self) -> float:
        """conversions + nulls: how many journeys took this path."""
        return self.conversions + self.nulls


PathStats = Mapping[tuple[str, ...], PathCount]


def merge(*stats: PathStats) -> dict[tuple[str, ...], PathCount]:
    """The sum of several `PathStats`, path by path."""
    out: dict[tuple[str, ...], PathCount] = {}
    for s in stats:
        for path, count in s.items():
            out[path] = out[path] + count if path in out else count
    return out


def seen(stats: PathStats) -> dict[tuple[str, ...], PathCount]:
    """The paths the models learn from: non-empty, with conversions + nulls > 0."""
    return {p: c for p, c in stats.items() if p and c.journeys > 0}


def channels(stats: PathStats) -> tuple[str, ...]:
    """Every channel on a seen path, sorted by name."""
    return tuple(sorted({ch for path in seen(stats) for ch in path}))


# --- text form ----------------------------------------------------------------


def parse_path(text: str) -> tuple[str, ...]:
    """`"a > b > c"` -> `("a", "b", "c")`; spaces around channels are stripped.

    Raises ValueError for an empty path or an empty channel (`"a > > b"`).
    """
    parts = tuple(p.strip() for p in text.split(SEPARATOR))
    if not all(parts):
        raise ValueError(f"invalid path {text!r}: empty path or channel")
    return parts


def format_path(path: Iterable[str]) -> str:
    """`("a", "b")` -> `"a > b"`; the inverse of `parse_path`.

    Raises ValueError for what `parse_path` could not read back: an empty
    path, or a channel that is blank, padded with spaces or contains `>`.
    """
    parts = tuple(path)
    if not parts or any(not p or p != p.strip() or SEPARATOR in p for p in parts):
        raise ValueError(f"path {parts!r} has no text form")
    return f" {SEPARATOR} ".join(parts)


def fold_tail(stats: PathStats, max_paths: int) -> dict[tuple[str, ...], PathCount]:
    """Keep the `max_paths` most common paths; sum all the others into `("(other)",)`.

    "Most common" is most `conversions + nulls`, ties broken by the path's
    text (`" > ".join`), so the result does not depend on the input's order.
    The folded paths become one path of one pseudo-channel `(other)` (which
    the models then treat like any other channel); if the input already had
    that path it is folded in as well. Nothing is folded when there are at
    most `max_paths` paths.
    """
    if max_paths < 0:
        raise ValueError(f"max_paths must be >= 0, got {max_paths}")
    if len(stats) <= max_paths:
        return dict(stats)
    ranked = sorted(stats.items(), key=lambda item: (-item[1].journeys, " > ".join(item[0])))
    kept = dict(ranked[:max_paths])
    other = (OTHER,)
    folded = kept.pop(other, PathCount())
    for _, count in ranked[max_paths:]:
        folded = folded + count
    return {**kept, other: folded}


# --- shares and totals from channel weights -----------------------------------


def proportional_shares(inp: AttributionInput, weights: Mapping[str, float]) -> tuple[float, ...]:
    """Each touch's share = weight of its channel / Σ weights over the touches.

    Repeats count (each touch adds its channel's weight again). Falls back to
    linear (1/n each) when the sum is not > 0 or a touch's channel has no
    weight in `weights` (a channel unknown to the model snapshot). `()` for
    no touches. Weights must be >= 0.
    """
    if any(t.channel not in weights for t in inp.touches):
        return linear(inp, ModelParams())
    raw = [weights[t.channel] for t in inp.touches]
    total = math.fsum(raw)
    if not total > 0:
        return linear(inp, ModelParams())
    return tuple(w / total for w in raw)


def global_totals(stats: PathStats, weights: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Global normalisation: channel c gets total × w_c / Σ w, for conversions and value.

    Totals are over the seen paths (see the module docstring). Every channel
    of `weights` appears, sorted by name; all zero when Σ w is not > 0.
    Weights must be >= 0.
    """
    kept = seen(stats).values()
    conversions = math.fsum(c.conversions for c in kept)
    value = math.fsum(c.value for c in kept)
    total = math.fsum(weights.values())
    share = {ch: (w / total if total > 0 else 0.0) for ch, w in weights.items()}
    return {ch: {"conversions": conversions * share[ch], "value": value * share[ch]} for ch in sorted(share)}
