"""The `shapley_ordered` model: ordered Shapley values (docs/architecture.md).

Zhao, Mahboobi & Bagheri (2018), "Shapley Value Methods for Attribution Modeling in
Online Advertising", ordered Shapley value: the simplified Shapley value of `shapley`
split by touchpoint position. Position t is the t-th touchpoint of the path, repeats
included. A journey with channel set S (k = |S| distinct channels) shares its
conversions R as in `shapley`, R/k to each channel; a channel that appears m times on
the path takes its R/k in m equal parts, one at each position where it appears:

    φ_c^t = Σ over seen paths p with p_t = c of R(p) / (|set(p)| · count_p(c))

so Σ_t φ_c^t = φ_c: the channel totals are `shapley`'s, the breakdown by position is
the new information. The value game is the same with the journeys' summed value.

Example: paths A>B 2 conversions, B>A>B 1, B 3, C 1 null. A>B: A@1 2/2 = 1, B@2 1.
B>A>B ({A, B}, B twice): B@1 1/(2·2) = 1/4, A@2 1/2, B@3 1/4. B: B@1 3. So φ_A =
(1, 1/2), φ_B = (13/4, 1, 1/4), φ_C = (0); Σ_t φ_A^t = 3/2 and Σ_t φ_B^t = 9/2, as in
`shapley`.

A channel's list of positions runs to the last position it was seen at on any seen path
(converting or not; a position it was never seen at in between holds 0). A (channel,
position) beyond its list, or a channel not in it, is *unknown to the snapshot*.

Per conversion (`ordered_shares`): the touch at position t, of channel c, weighs φ_c^t
(conversions game); the shares are these weights normalised to sum 1. Linear (1/n each)
when some (channel, position) is unknown to the snapshot or the weights sum to 0.
Example: touches A, B, A with φ_A = (0.6, 0.1, 0.3) and φ_B = (0.5, 0.2): weights
0.6, 0.2, 0.3; Σ = 1.1, shares (6/11, 2/11, 3/11).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stream.attribution.heuristic import linear
from stream.attribution.paths import PathStats, seen
from stream.core.config import ModelParams
from stream.core.records import AttributionInput

__all__ = ["OrderedValues", "channel_totals", "ordered_shares", "ordered_values"]

Positions = dict[str, tuple[float, ...]]  # channel -> (φ_c^1, φ_c^2, …)


@dataclass(frozen=True, slots=True)
class OrderedValues:
    """φ_c^t per channel (sorted by name) as a tuple indexed by position t − 1: of the
    conversions game (`conversions`) and the value game (`value`); both have the same
    channels and the same lengths."""

    conversions: Positions
    value: Positions


def ordered_values(stats: PathStats) -> OrderedValues:
    """φ_c^t over the seen paths (see the module docstring)."""
    conversions: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
    value: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
    for path, count in seen(stats).items():
        k = len(set(path))
        for t, ch in enumerate(path):
            parts = k * path.count(ch)
            conversions[ch, t].append(count.conversions / parts)
            value[ch, t].append(count.value / parts)
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
    if any(ch not in positions or t >= len(positions[ch]) for t, ch in enumerate(channels)):
        return linear(inp, ModelParams())
    weights = [positions[ch][t] for t, ch in enumerate(channels)]
    total = math.fsum(weights)
    if not total > 0:
        return linear(inp, ModelParams())
    return tuple(w / total for w in weights)


def channel_totals(values: OrderedValues) -> dict[str, dict[str, float | list[float]]]:
    """Channel c's totals: Σ_t φ_c^t (= φ_c of `shapley`) for conversions and value, and the
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
