"""The `shapley` model: simplified Shapley values of channels (docs/architecture.md).

The definition of Zhao, Mahboobi & Bagheri (2018), "Shapley Value Methods for
Attribution Modeling in Online Advertising" (simplified Shapley value), which the
open-source implementations share. Players are the channels on seen paths (see
`paths`); a journey's *channel set* is the set of its path's channels (order and
repeats ignored). With R(S) the conversions of the journeys whose channel set is
exactly S, the worth of a coalition is

    v(S) = Σ_{T ⊆ S} R(T)

the conversions of the journeys whose channel set is a *subset* of S: what S would
have converted on its own. v is a sum of unanimity games R(T)·u_T, and the Shapley
value of u_T gives 1/|T| to each member of T, so

    φ_c = Σ_{S ∋ c} R(S) / |S|

one pass over the path counts, exact for any number of channels: each journey's
conversions are shared evenly among its distinct channels. Hence φ_c >= 0;
Σ φ = v(N) = every conversion (efficiency); a channel on no converting path gets 0;
two channels that always appear together get the same (symmetry).

Example: paths A>B 2 conversions, A>B>A 1, B 3, C 1 null. Channel sets {A,B} 3
conversions, {B} 3, {C} 0: φ_A = 3/2, φ_B = 3/2 + 3 = 9/2, φ_C = 0; Σ = 6.

The value game is the same with R_value(S), the summed value of those journeys.

Per conversion (`shapley_shares`): each touch's share ∝ its channel's φ (conversions
game), repeats count; linear when a channel is unknown to the snapshot or every weight
is 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from stream.attribution.paths import PathStats, channels, proportional_shares, seen
from stream.core.records import AttributionInput

__all__ = ["ShapleyValues", "channel_totals", "shapley_shares", "shapley_values"]


@dataclass(frozen=True, slots=True)
class ShapleyValues:
    """φ per channel, sorted by channel name: of the conversions game (`conversions`)
    and of the value game (`value`). Every channel on a seen path is in both."""

    conversions: dict[str, float]
    value: dict[str, float]


def shapley_values(stats: PathStats) -> ShapleyValues:
    """φ_c = Σ over the seen paths containing c of (conversions, value) / |channel set|."""
    conversions: defaultdict[str, list[float]] = defaultdict(list)
    value: defaultdict[str, list[float]] = defaultdict(list)
    for path, count in seen(stats).items():
        members = set(path)
        for ch in members:
            conversions[ch].append(count.conversions / len(members))
            value[ch].append(count.value / len(members))
    names = channels(stats)
    return ShapleyValues(
        {ch: math.fsum(conversions[ch]) for ch in names},
        {ch: math.fsum(value[ch]) for ch in names},
    )


def shapley_shares(inp: AttributionInput, values: Mapping[str, float]) -> tuple[float, ...]:
    """Each touch's share ∝ φ of its channel (`ShapleyValues.conversions`); repeats count.

    Linear (1/n each) when every weight is 0 or a channel is not in `values` (unknown
    to the snapshot); `()` for no touches.
    """
    return proportional_shares(inp, values)


def channel_totals(values: ShapleyValues) -> dict[str, dict[str, float]]:
    """Channel c's totals are its φ: conversions game and value game (both efficient, so
    they sum to the total conversions and value of the seen paths)."""
    return {ch: {"conversions": phi, "value": values.value[ch]} for ch, phi in values.conversions.items()}
