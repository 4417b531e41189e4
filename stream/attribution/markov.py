"""The `markov` model: removal effects of an absorbing Markov chain (docs/architecture.md).

The chain (order k >= 1). A transient state is the tuple of the last <= k
channels of a journey; the start state is the empty tuple `()`. A seen path
c1..cn (see `paths`) walks () -> s1 -> ... -> sn with si = (c1..ci)[-k:],
then into the absorbing `(conversion)` and/or `(null)` state. Each step of
the walk adds the path's journeys (conversions + nulls) to that transition's
count, except the last step, which adds `conversions` towards conversion and
`nulls` towards null. Repeats are kept (order 1: `a > a` is a self-loop).
Transition probabilities are the counts divided by their state's total.

P(conv). With Q the transient-to-transient probabilities and r the
probabilities of going straight to conversion, the absorption probabilities
x satisfy x = Qx + r, i.e. (I − Q)x = r. Every transient state lies on a path
that ends in absorption, so I − Q is invertible (`lstsq` is only a guard).
P(conv) = x at the start state s.

Removal of channel c sends every transition into a state containing c to
null instead: the set R of those states drops out, leaving the system
(I − Q)_KK x' = r_K on the kept states K, and P(conv without c) = x'_s.
RE_c = 1 − P(conv without c) / P(conv), clipped to [0, 1].

Solved exactly, once for all channels: with the fundamental matrix
N = (I − Q)^-1 (one `numpy.linalg.solve`) and y = N[s] (expected visits from
the start), the block-inverse identity (I − Q)_KK^-1 = N_KK − N_KR N_RR^-1 N_RK
turns x'_s into x_s − y_R N_RR^-1 x_R, so

    RE_c = y_R · N_RR^-1 x_R / x_s

(the probability of converting after entering R, over P(conv)). Each channel
then costs one solve of size |R| instead of one of size |K|: order 3 over 20
channels has ~8,000 states, of which each channel is in ~1,100. The
matrices are dense: memory is ~8 n² bytes per copy for n states (~0.5 GB at
8,000), fine for orders 1-2 and small channel sets at order 3.

One override: a channel on no converting path gets RE 0. A memoryless
chain can otherwise credit it (paths `a > b` converting and `c > b` null:
removing c also removes c's walks into b, which the chain believes convert
half the time, so RE_c = 0.5) although it helped no conversion.

Value removal effects (ChannelAttribution's `markov_model` with `var_value`). The
transition into conversion from state s earns v̄(s), the mean value of the conversions
whose path's last state is s. The expected value of a journey is

    V = Σ_s y_s · P(s -> conversion) · v̄(s) = y · r_v,   r_v(s) = value ending at s / journeys leaving s

(P(s -> conversion) · v̄(s) = conversions ending at s / journeys leaving s · value
ending at s / conversions ending at s). V is linear in r as P(conv) is, so the same
block inverse gives V without c, V₋c = V − y_R N_RR^-1 (N r_v)_R, and the value removal
effect REv_c = 1 − V₋c / V, clipped to [0, 1]: 0 for a channel on no converting path,
all 0 when V = 0 (no conversion has a value). REv differs from RE where the paths
through a channel end in conversions of other than the mean value: a channel whose
paths lead mostly to high-value conversions has REv above its RE (at order 1 only
through the states its paths end in).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from stream.attribution.paths import PathStats, channels, global_totals, proportional_shares, seen
from stream.core.records import AttributionInput

__all__ = [
    "Effects",
    "channel_totals",
    "effects",
    "markov_shares",
    "removal_effects",
    "value_removal_effects",
]

State = tuple[str, ...]
START: State = ()


@dataclass(frozen=True, slots=True)
class Effects:
    """What the order-`order` chain learned, per channel on a seen path (sorted by name):
    the removal effects RE (`conversions`) and the value removal effects REv (`value`)."""

    order: int
    conversions: dict[str, float]
    value: dict[str, float]


class _Chain:
    """The order-k chain as dense numpy arrays.

    `states[i]` is transient state i (`states[0]` is the start), `a` is I − Q,
    `r[i]` the probability of i -> (conversion) and `rv[i]` = r[i] · v̄(i), the value
    ending at i over the journeys leaving i (0 where no conversion ends).
    """

    def __init__(self, stats: PathStats, order: int) -> None:
        edges: defaultdict[tuple[State, State], float] = defaultdict(float)
        ends: defaultdict[State, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for path, count in seen(stats).items():
            walk = [START, *(path[max(0, i + 1 - order) : i + 1] for i in range(len(path)))]
            for a, b in pairwise(walk):
                edges[a, b] += count.journeys
            end = ends[walk[-1]]
            end[0] += count.conversions
            end[1] += count.value if count.conversions > 0 else 0.0
            end[2] += count.journeys
        self.states: list[State] = sorted({s for edge in edges for s in edge}, key=lambda s: (len(s), s))
        index = {s: i for i, s in enumerate(self.states)}
        n = len(self.states)
        q = np.zeros((n, n))
        for (a, b), w in edges.items():
            q[index[a], index[b]] = w
        absorbed = np.zeros((n, 3))  # conversions, their value, journeys ending at each state
        for s, end in ends.items():
            absorbed[index[s]] = end
        totals = q.sum(axis=1) + absorbed[:, 2]
        q /= totals[:, None]
        np.negative(q, out=q)
        q[np.diag_indices(n)] += 1.0
        self.a = q
        self.r = absorbed[:, 0] / totals
        self.rv = absorbed[:, 1] / totals

    def contains(self, channel: str) -> np.ndarray:
        """The mask of the states that contain `channel`."""
        return np.array([channel in s for s in self.states], dtype=bool)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x with a x = b: `numpy.linalg.solve`, least squares if `a` is singular."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, b, rcond=None)[0]


def effects(stats: PathStats, order: int = 1) -> Effects:
    """RE_c and REv_c of every channel on a seen path (see the module docstring).

    All 0.0 when nothing converts (P(conv) = 0), REv all 0.0 when V = 0; never NaN or
    negative. One fundamental matrix; per channel one solve of size |R| for both.
    """
    if order < 1:
        raise ValueError(f"markov order must be >= 1, got {order}")
    names = channels(stats)
    converting = {ch for path, c in seen(stats).items() if c.conversions > 0 for ch in path}
    found, found_value = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    if converting:
        chain = _Chain(stats, order)
        fundamental = _solve(chain.a, np.eye(len(chain.states)))
        x, y = fundamental @ np.column_stack([chain.r, chain.rv]), fundamental[0]
        for ch in sorted(converting):
            r = chain.contains(ch)
            via = y[r] @ _solve(fundamental[np.ix_(r, r)], x[r])  # (lost P(conv), lost V)
            found[ch], found_value[ch] = _ratio(via[0], x[0, 0]), _ratio(via[1], x[0, 1])
    return Effects(order, found, found_value)


def _ratio(lost: float, total: float) -> float:
    """lost / total clipped to [0, 1]; 0 when total is not > 0."""
    return float(min(max(lost / total, 0.0), 1.0)) if total > 0 else 0.0


def removal_effects(stats: PathStats, order: int = 1) -> dict[str, float]:
    """RE_c of every channel on a seen path, sorted by channel name (`effects(…).conversions`)."""
    return effects(stats, order).conversions


def value_removal_effects(stats: PathStats, order: int = 1) -> dict[str, float]:
    """REv_c of every channel on a seen path, sorted by channel name (`effects(…).value`)."""
    return effects(stats, order).value


def markov_shares(inp: AttributionInput, weights: Mapping[str, float]) -> tuple[float, ...]:
    """Each touch's share = RE of its channel / Σ RE over the conversion's touches.

    Repeats count. Linear (1/n each) when that sum is 0 or a channel is not in
    `weights` (unknown to the snapshot); `()` for no touches.
    """
    return proportional_shares(inp, weights)


def channel_totals(stats: PathStats, found: Effects) -> dict[str, dict[str, float]]:
    """Channel c gets total conversions × RE_c / Σ RE and total value × REv_c / Σ REv (all 0
    when the sum is 0), and its `removal_effect` and `value_removal_effect`."""
    by_re, by_rev = global_totals(stats, found.conversions), global_totals(stats, found.value)
    return {
        ch: {
            "conversions": by_re[ch]["conversions"],
            "value": by_rev[ch]["value"],
            "removal_effect": found.conversions[ch],
            "value_removal_effect": found.value[ch],
        }
        for ch in by_re
    }
