"""The `shapley` model: Shapley values of channels (docs/architecture.md).

Players are the channels on seen paths (see `paths`). A coalition S is a set
of channels; v(S) is the conversion rate conversions / (conversions + nulls)
of the journeys whose channel *set* is exactly S (order and repeats
ignored), 0 when no journey has that set, and v(∅) = 0. The Shapley value

    φ_i = Σ_{S ⊆ N∖{i}} |S|! (n − |S| − 1)! / n! · (v(S ∪ {i}) − v(S))

is the average, over the n! orders in which the players can join, of what i
adds when it joins. Efficiency: Σ φ_i = v(N) − v(∅) = v(N).

Up to `max_exact` players the sum is enumerated over all 2^n coalitions
(bitmask-indexed numpy arrays). Above it, `samples` seeded random orders are
drawn and φ_i is the mean of i's marginal contributions; every order's
contributions telescope to v(N), so efficiency still holds up to rounding.
The sampled result's `error_bound` is max_i 1.96 · s_i / √m, s_i the sample
standard deviation of i's m contributions: the largest half-width of the
per-channel normal-approximation 95% confidence intervals (a statistical
bound, not a hard one).

With the exact-set v a channel can have φ < 0 (joining moves journeys to a
set that converts less, or that no journey has). Negative values get no
credit: within a conversion (`shapley_shares`) and in `channel_totals`, φ is
clipped at 0 before normalising.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from stream.attribution.paths import PathStats, channels, global_totals, proportional_shares, seen
from stream.core.records import AttributionInput

__all__ = ["ShapleyResult", "channel_totals", "shapley_shares", "shapley_values"]

Z_95 = 1.96


@dataclass(frozen=True)
class ShapleyResult:
    """φ per channel (sorted by name); `exact` False when sampled.

    `error_bound`: None when exact; else the largest 95% confidence
    half-width of a channel's value (see the module docstring).
    """

    values: dict[str, float]
    exact: bool
    error_bound: float | None


def _coalition_rates(stats: PathStats, names: tuple[str, ...]) -> dict[int, float]:
    """v(S) for every channel set S that some journey has, keyed by bitmask (bit i = names[i])."""
    bit = {ch: 1 << i for i, ch in enumerate(names)}
    conv: dict[int, float] = {}
    total: dict[int, float] = {}
    for path, count in seen(stats).items():
        mask = 0
        for ch in set(path):
            mask |= bit[ch]
        conv[mask] = conv.get(mask, 0.0) + count.conversions
        total[mask] = total.get(mask, 0.0) + count.journeys
    return {mask: conv[mask] / total[mask] for mask in conv}


def _exact(rates: dict[int, float], n: int) -> np.ndarray:
    """φ by enumerating all 2^n coalitions with the factorial weights."""
    size = 1 << n
    v = np.zeros(size)
    for mask, rate in rates.items():
        v[mask] = rate
    subsets = np.arange(size)
    popcount = np.zeros(size, dtype=np.int64)
    for i in range(n):
        popcount += (subsets >> i) & 1
    weight = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    phi = np.empty(n)
    for i in range(n):
        without = subsets[(subsets >> i) & 1 == 0]
        phi[i] = np.dot(weight[popcount[without]], v[without | (1 << i)] - v[without])
    return phi


def _sampled(rates: dict[int, float], n: int, samples: int, seed: int) -> tuple[np.ndarray, float]:
    """φ as the mean marginal contribution over `samples` seeded random orders, and the error bound."""
    rng = np.random.default_rng(seed)
    contributions = np.empty((samples, n))
    for k in range(samples):
        mask, before = 0, 0.0
        for player in rng.permutation(n).tolist():
            mask |= 1 << player
            after = rates.get(mask, 0.0)
            contributions[k, player] = after - before
            before = after
    se = contributions.std(axis=0, ddof=1) / math.sqrt(samples)
    return contributions.mean(axis=0), float(Z_95 * se.max())


def shapley_values(
    stats: PathStats, *, max_exact: int = 16, samples: int = 2000, seed: int = 0
) -> ShapleyResult:
    """The Shapley value of every channel: exact up to `max_exact` channels, else sampled.

    Deterministic: the same stats, `samples` and `seed` give the same result.
    """
    if samples < 2:
        raise ValueError(f"samples must be >= 2, got {samples}")
    names = channels(stats)
    rates = _coalition_rates(stats, names)
    rates.pop(0, None)  # v(∅) = 0
    n = len(names)
    if n <= max_exact:
        phi, bound = _exact(rates, n), None
    else:
        phi, bound = _sampled(rates, n, samples, seed)
    return ShapleyResult(dict(zip(names, phi.tolist(), strict=True)), n <= max_exact, bound)


def clipped(values: Mapping[str, float]) -> dict[str, float]:
    """φ clipped at 0: negative values get no credit."""
    return {ch: max(phi, 0.0) for ch, phi in values.items()}


def shapley_shares(inp: AttributionInput, values: Mapping[str, float]) -> tuple[float, ...]:
    """Each touch's share ∝ max(φ of its channel, 0); repeats count.

    Linear (1/n each) when every weight is 0 or a channel is not in `values`
    (unknown to the snapshot); `()` for no touches. Takes `ShapleyResult.values`.
    """
    return proportional_shares(inp, clipped(values))


def channel_totals(stats: PathStats, result: ShapleyResult) -> dict[str, dict[str, float]]:
    """Channel c gets total conversions and value × max(φ_c, 0) / Σ max(φ, 0)."""
    return global_totals(stats, clipped(result.values))
