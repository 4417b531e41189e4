"""The `shapley` model (DESIGN.md §7) on hand-computed examples.

v(S) is the conversion rate of the journeys whose channel set is exactly S
(0 when there are none, v(∅) = 0). With n players the weight of a coalition
S not containing i is |S|! (n − |S| − 1)! / n!: for n = 2, 1/2 for |S| = 0
and 1; for n = 3, 1/3 (|S| = 0), 1/6 (|S| = 1), 1/3 (|S| = 2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.attribution.paths import PathCount
from stream.attribution.shapley import ShapleyResult, channel_totals, shapley_shares, shapley_values
from stream.core.records import AttributionInput, Touchpoint
from tests.support.strategies import path_stats

CHANNELS = ("a", "b", "c", "d", "e")
stats_st = path_stats(CHANNELS, 10)


def journey(*channels: str) -> AttributionInput:
    touches = tuple(Touchpoint(ts=k, channel=c, session_id=f"s{k}") for k, c in enumerate(channels))
    return AttributionInput(touches=touches, conversion_ts=len(channels))


def v_all(stats) -> float:
    """v(N): the conversion rate of the journeys that touched every channel."""
    everyone = {ch for path, c in stats.items() if c.conversions + c.nulls > 0 for ch in path}
    full = [c for p, c in stats.items() if p and set(p) == everyone and c.conversions + c.nulls > 0]
    journeys = sum(c.conversions + c.nulls for c in full)
    return sum(c.conversions for c in full) / journeys if journeys else 0.0


def random_stats(n_channels: int, n_paths: int, seed: int) -> dict[tuple[str, ...], PathCount]:
    """`n_paths` random journeys of 1-6 touches over `n_channels` channels, ~30% converting."""
    rng = np.random.default_rng(seed)
    names = [f"ch{i:02d}" for i in range(n_channels)]
    stats: dict[tuple[str, ...], PathCount] = {}
    for _ in range(n_paths):
        path = tuple(names[i] for i in rng.integers(0, n_channels, size=rng.integers(1, 7)))
        converted = rng.random() < 0.3
        count = PathCount(conversions=1.0, value=10.0) if converted else PathCount(nulls=1.0)
        stats[path] = stats[path] + count if path in stats else count
    return stats


# A>B: 1 conv, A: 1 null, B: 1 conv.
TWO = {("A", "B"): PathCount(conversions=1), ("A",): PathCount(nulls=1), ("B",): PathCount(conversions=1)}

# Sets: {A} 1 conv 3 null; {B} 1 conv 1 null; {A,B} 3 conv 1 null (A>B, B>A);
# {A,B,C} 1 conv; {C} 2 null (C and C>C); {A,C}, {B,C}: no journey.
THREE = {
    ("A",): PathCount(conversions=1, value=10, nulls=3),
    ("B",): PathCount(conversions=1, value=20, nulls=1),
    ("A", "B"): PathCount(conversions=2, value=30),
    ("B", "A"): PathCount(conversions=1, value=40, nulls=1),
    ("C", "A", "B", "C"): PathCount(conversions=1, value=50),
    ("C",): PathCount(nulls=1),
    ("C", "C"): PathCount(nulls=1),
}


# --- hand-computed values -----------------------------------------------------


def test_two_channels() -> None:
    """v(A) = 0/1 = 0, v(B) = 1/1 = 1, v(AB) = 1/1 = 1.

    φ_A = 1/2 (v(A) − v(∅)) + 1/2 (v(AB) − v(B)) = 0 + 0 = 0.
    φ_B = 1/2 (v(B) − v(∅)) + 1/2 (v(AB) − v(A)) = 1/2 + 1/2 = 1. Σ = 1 = v(AB).
    """
    result = shapley_values(TWO)
    assert result == ShapleyResult({"A": 0.0, "B": 1.0}, exact=True, error_bound=None)


def test_three_channels() -> None:
    """v(A) = 1/4, v(B) = 1/2, v(C) = 0, v(AB) = 3/4, v(AC) = v(BC) = 0, v(ABC) = 1.

    φ_A = 1/3·v(A) + 1/6(v(AB) − v(B)) + 1/6(v(AC) − v(C)) + 1/3(v(ABC) − v(BC))
        = 1/12 + 1/24 + 0 + 1/3 = 11/24.
    φ_B = 1/3·v(B) + 1/6(v(AB) − v(A)) + 1/6(v(BC) − v(C)) + 1/3(v(ABC) − v(AC))
        = 1/6 + 1/12 + 0 + 1/3 = 14/24.
    φ_C = 1/3·v(C) + 1/6(v(AC) − v(A)) + 1/6(v(BC) − v(B)) + 1/3(v(ABC) − v(AB))
        = 0 − 1/24 − 1/12 + 1/12 = −1/24.
    Σ = (11 + 14 − 1)/24 = 1 = v(ABC).
    """
    result = shapley_values(THREE)
    assert result.exact and result.error_bound is None
    assert result.values == pytest.approx({"A": 11 / 24, "B": 14 / 24, "C": -1 / 24}, abs=1e-12)


def test_single_channel_and_nothing() -> None:
    """One channel: φ_A = v(A) − v(∅) = 2/4. No seen journey: no players."""
    assert shapley_values({("A",): PathCount(conversions=2, nulls=2)}).values == {"A": 0.5}
    assert shapley_values({(): PathCount(conversions=1)}).values == {}
    assert shapley_values({("A",): PathCount(nulls=5)}).values == {"A": 0.0}


@given(stats_st)
def test_exact_efficiency(stats) -> None:
    result = shapley_values(stats)
    assert result.exact
    assert math.fsum(result.values.values()) == pytest.approx(v_all(stats), abs=1e-9)


# --- sampling ---------------------------------------------------------------------


def test_sampled_matches_exact_within_its_bound() -> None:
    """18 channels: the sampled values lie within `error_bound` of the exact ones (2^18 coalitions)."""
    stats = random_stats(18, 3000, seed=1)
    exact = shapley_values(stats, max_exact=18)
    sampled = shapley_values(stats, samples=2000, seed=7)
    assert exact.exact and not sampled.exact
    assert sampled.error_bound is not None and 0 < sampled.error_bound < 0.05
    for ch, phi in exact.values.items():
        assert abs(sampled.values[ch] - phi) <= sampled.error_bound
    assert math.fsum(sampled.values.values()) == pytest.approx(v_all(stats), abs=1e-9)


def test_sampled_is_deterministic_for_a_seed() -> None:
    stats = random_stats(18, 500, seed=2)
    first = shapley_values(stats, samples=200, seed=3)
    assert shapley_values(stats, samples=200, seed=3) == first
    assert shapley_values(stats, samples=200, seed=4) != first
    with pytest.raises(ValueError):
        shapley_values(stats, samples=1)


def test_sixteen_channels_are_exact_and_efficient() -> None:
    """The exact method's upper bound (16 channels, 65,536 coalitions); no timing here
    (speed claims live in bench/), only that it is exact and efficient."""
    stats = random_stats(16, 5000, seed=3)
    result = shapley_values(stats)
    assert result.exact and len(result.values) == 16 and result.error_bound is None
    everyone = frozenset(ch for path in stats for ch in path)
    assert math.fsum(result.values.values()) == pytest.approx(_rate_of_exact_set(stats, everyone), abs=1e-9)


# --- shares and totals ------------------------------------------------------------


def test_shares_clip_negative_values() -> None:
    """φ A 11/24, B 14/24, C −1/24 → weights 11, 14, 0 (C clipped), 11 for A>B>C>A.

    Σ = 36: shares 11/36, 14/36, 0, 11/36.
    """
    values = shapley_values(THREE).values
    shares = shapley_shares(journey("A", "B", "C", "A"), values)
    assert shares == pytest.approx((11 / 36, 14 / 36, 0.0, 11 / 36), abs=1e-12)


def test_shares_fall_back_to_linear() -> None:
    """Only non-positive values, or an unknown channel: 1/n each; no touches: ()."""
    assert shapley_shares(journey("C", "C"), {"C": -0.5}) == (0.5, 0.5)
    assert shapley_shares(journey("A", "Z"), {"A": 1.0}) == (0.5, 0.5)
    assert shapley_shares(journey(), {"A": 1.0}) == ()


@given(stats_st, st.lists(st.sampled_from((*CHANNELS, "zz")), min_size=1, max_size=6))
def test_shares_are_nonnegative_and_sum_to_one(stats, channels) -> None:
    shares = shapley_shares(journey(*channels), shapley_values(stats).values)
    assert len(shares) == len(channels)
    assert all(s >= 0 for s in shares)
    assert math.fsum(shares) == pytest.approx(1.0, abs=1e-12)


def test_channel_totals_by_hand() -> None:
    """Clipped φ: A 11/24, B 14/24, C 0; Σ 25/24. 6 conversions, value 150.

    A: 6·11/25 = 2.64 conversions, 150·11/25 = 66 value; B: 3.36 and 84; C: 0 and 0.
    """
    totals = channel_totals(THREE, shapley_values(THREE))
    assert totals["A"] == pytest.approx({"conversions": 2.64, "value": 66.0})
    assert totals["B"] == pytest.approx({"conversions": 3.36, "value": 84.0})
    assert totals["C"] == {"conversions": 0.0, "value": 0.0}


@given(stats_st)
def test_channel_totals_conserve_conversions_and_value(stats) -> None:
    result = shapley_values(stats)
    if not sum(max(phi, 0.0) for phi in result.values.values()) > 0:
        return
    totals = channel_totals(stats, result)
    seen = [c for c in stats.values() if c.conversions + c.nulls > 0]
    assert sum(t["conversions"] for t in totals.values()) == pytest.approx(sum(c.conversions for c in seen))
    assert sum(t["value"] for t in totals.values()) == pytest.approx(sum(c.value for c in seen))


def _rate_of_exact_set(stats, channels: frozenset[str]) -> float:
    """v(S): conversion rate of the journeys whose channel set is exactly S."""
    conversions = nulls = 0.0
    for path, count in stats.items():
        if frozenset(path) == channels:
            conversions += count.conversions
            nulls += count.nulls
    return conversions / (conversions + nulls) if conversions + nulls else 0.0
