"""The `shapley_ordered` model: ordered Shapley values (docs/architecture.md).

Zhao, Mahboobi & Bagheri (2018), "Shapley Value Methods for Attribution Modeling in
Online Advertising", ordered Shapley value: the simplified Shapley value of `shapley`
split by the touchpoint position at which the channel joined the journey. A journey's
*channel sequence* is its path's distinct channels ordered by first appearance
(`a > b > a > c` -> (a, b, c)); in a sequence (c_1, …, c_k), c_i joined at position i.
Each journey's conversions R are shared as in `shapley`, R/k to each distinct channel,
and c_i's part is credited at position i:

    φ_c^i = Σ over channel sequences with c at position i of R(seq) / |seq|

so Σ_i φ_c^i = φ_c: the channel totals are `shapley`'s, the breakdown by position is
the new information. The value game is the same with the journeys' summed value.

Example: paths A>B 2 conversions, B>A>B 1, B 3, C 1 null. Sequences (A, B) 2,
(B, A) 1, (B) 3, (C) 0: φ_A = (2/2 at 1, 1/2 at 2) = (1, 1/2), φ_B = (1/2 + 3 at 1,
2/2 at 2) = (7/2, 1), φ_C = (0); Σ_i φ_A^i = 3/2 and Σ_i φ_B^i = 9/2, as in `shapley`.

A channel's list of positions runs to the last position it was seen at on any seen path
(converting or not; a position it was never seen at in between holds 0). A (channel,
position) beyond its list, or a channel not in it, is *unknown to the snapshot*.

Per conversion (`ordered_shares`): the conversion's distinct channels, ordered by first
appearance, get positions 1..k; channel c at position i weighs φ_c^i (conversions
game); a channel's weight is split evenly among its touches in this conversion; the
shares are these weights normalised to sum 1. Linear (1/n each) when some (channel,
position) is unknown to the snapshot or the weights sum to 0. Example: touches
A, B, A with φ_A^1 = 0.6 and φ_B^2 = 0.2: A weighs 0.6, split 0.3 + 0.3 over its two
touches, B weighs 0.2; Σ = 0.8, shares (0.375, 0.25, 0.375).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stream.attribution.heuristic import linear
from stream.attribution.paths import PathStats, seen
from stream.core.config import ModelParams
from stream.core.records import AttributionInput

__all__ = ["OrderedValues", "channel_totals", "ordered_shares", "ordered_values", "sequence"]

Positions = dict[str, tuple[float, ...]]  # channel -> (φ_c^1, φ_c^2, …)


@dataclass(frozen=True, slots=True)
class OrderedValues:
    """φ_c^i per channel (sorted by name) as a tuple indexed by position i − 1: of the
    conversions game (`conversions`) and the value game (`value`); both have the same
    channels and the same lengths."""

    conversions: Positions
    value: Positions


def sequence(path: Iterable[str]) -> tuple[str, ...]:
    """The distinct channels of a path, ordered by first appearance."""
    return tuple(dict.fromkeys(path))


def ordered_values(stats: PathStats) -> OrderedValues:
    """φ_c^i over the seen paths (see the module docstring)."""
    conversions: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
    value: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
    for path, count in seen(stats).items():
        members = sequence(path)
        for i, ch in enumerate(members):
            conversions[ch, i].append(count.conversions / len(members))
            value[ch, i].append(count.value / len(members))
    return OrderedValues(_positions(conversions), _positions(value))


def _positions(parts: Mapping[tuple[str, int], list[float]]) -> Positions:
    """channel -> (Σ parts at position 1, …, up to its last position seen), 0 in the gaps."""
    length: dict[str, int] = {}
    for ch, i in parts:
        length[ch] = max(length.get(ch, 0), i + 1)
    return {ch: tuple(math.fsum(parts.get((ch, i), ())) for i in range(length[ch])) for ch in sorted(length)}


def ordered_shares(inp: AttributionInput, positions: Mapping[str, Sequence[float]]) -> tuple[float, ...]:
    """Each touch's share of one conversion (see the module docstring); `()` for no touches."""
    channels = [t.channel for t in inp.touches]
    members = sequence(channels)
    if any(ch not in positions or i >= len(positions[ch]) for i, ch in enumerate(members)):
        return linear(inp, ModelParams())
    weight = {ch: positions[ch][i] for i, ch in enumerate(members)}
    total = math.fsum(weight.values())
    if not total > 0:
        return linear(inp, ModelParams())
    touches = {ch: channels.count(ch) for ch in members}
    return tuple(weight[ch] / touches[ch] / total for ch in channels)


def channel_totals(values: OrderedValues) -> dict[str, dict[str, float | list[float]]]:
    """Channel c's totals: Σ_i φ_c^i (= φ_c of `shapley`) for conversions and value, and the
    breakdown by position, `positions` (conversions) and `value_positions`."""
    return {
        ch: {
            "conversions": math.fsum(phi),
            "value": math.fsum(values.value[ch]),
            "positions": list(phi),
            "value_positions": list(values.value[ch]),
        }
        for ch, phi in values.conversions.items()
    }
