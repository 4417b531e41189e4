"""`shapley` and `shapley_ordered` (Zhao, Mahboobi & Bagheri 2018) on hand-computed examples.

simplified Shapley: φ_c = Σ over channel sets S containing c of R(S) / |S|, R(S) the
conversions (value game: the value) of the journeys whose channel set is exactly S.
ordered Shapley: φ_c^t = Σ over the paths p with c at touchpoint t of R(p) / (|set(p)| ·
count_p(c)): each journey's R/|S| of a channel split over the positions it appears at.

THREE, by channel set (conversions, value):
  A (1, 10; 3 nulls)           set {A}
  B (1, 20; 1 null)            set {B}
  A > B (2, 30)                set {A,B}
  B > A (1, 40; 1 null)        set {A,B}
  C > A > B > C (1, 50)        set {A,B,C}
  C (1 null), C > C (1 null)   set {C}
R({A}) = 1, R({B}) = 1, R({A,B}) = 3, R({A,B,C}) = 1, R({C}) = 0: 6 conversions.
R_value: {A} 10, {B} 20, {A,B} 70, {A,B,C} 50: 150.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.attribution.paths import PathCount
from stream.attribution.shapley import ShapleyValues, channel_totals, shapley_shares, shapley_values
from stream.attribution.shapley_ordered import (
    OrderedValues,
    ordered_shares,
    ordered_values,
)
from stream.attribution.shapley_ordered import channel_totals as ordered_totals
from stream.core.records import AttributionInput, Touchpoint
from tests.support.strategies import path_stats

CHANNELS = ("a", "b", "c", "d", "e")
stats_st = path_stats(CHANNELS, 10)


def journey(*channels: str) -> AttributionInput:
    touches = tuple(Touchpoint(ts=k, channel=c, session_id=f"s{k}") for k, c in enumerate(channels))
    return AttributionInput(touches=touches, conversion_ts=len(channels))


def close(got, want, tol: float = 1e-12) -> bool:
    """`got` equals `want` (nested dicts and sequences of numbers) up to `tol`, relative or absolute."""
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(close(got[k], want[k], tol) for k in want)
        )
    if isinstance(want, list | tuple):
        return len(got) == len(want) and all(close(g, w, tol) for g, w in zip(got, want, strict=True))
    return math.isclose(got, want, rel_tol=tol, abs_tol=tol)


def seen_totals(stats) -> tuple[float, float]:
    """Conversions and value of the seen paths (non-empty, conversions + nulls > 0)."""
    kept = [c for p, c in stats.items() if p and c.conversions + c.nulls > 0]
    return math.fsum(c.conversions for c in kept), math.fsum(c.value for c in kept)


def converting_channels(stats) -> set[str]:
    return {ch for p, c in stats.items() if p and c.conversions > 0 for ch in p}


THREE = {
    ("A",): PathCount(conversions=1, value=10, nulls=3),
    ("B",): PathCount(conversions=1, value=20, nulls=1),
    ("A", "B"): PathCount(conversions=2, value=30),
    ("B", "A"): PathCount(conversions=1, value=40, nulls=1),
    ("C", "A", "B", "C"): PathCount(conversions=1, value=50),
    ("C",): PathCount(nulls=1),
    ("C", "C"): PathCount(nulls=1),
}


# --- simplified Shapley: hand-computed values ----------------------------------------


def test_three_channels() -> None:
    """φ_A = R({A}) + R({A,B})/2 + R({A,B,C})/3 = 1 + 3/2 + 1/3 = 17/6;
    φ_B = R({B}) + 3/2 + 1/3 = 17/6; φ_C = R({C}) + 1/3 = 0 + 1/3. Σ = 6 conversions.

    Value game: φ_A = 10 + 70/2 + 50/3 = 185/3; φ_B = 20 + 35 + 50/3 = 215/3;
    φ_C = 50/3. Σ = 450/3 = 150.
    """
    got = shapley_values(THREE)
    assert got.conversions == pytest.approx({"A": 17 / 6, "B": 17 / 6, "C": 1 / 3}, abs=1e-12)
    assert got.value == pytest.approx({"A": 185 / 3, "B": 215 / 3, "C": 50 / 3}, abs=1e-12)
    assert list(got.conversions) == list(got.value) == ["A", "B", "C"]


def test_two_channels() -> None:
    """A>B 1 conversion (value 8), A 1 null, B 1 conversion (value 2).
    φ_A = R({A,B})/2 = 1/2 (R({A}) = 0); φ_B = R({B}) + 1/2 = 3/2; Σ = 2.
    Value: φ_A = 8/2 = 4, φ_B = 2 + 4 = 6; Σ = 10."""
    stats = {
        ("A", "B"): PathCount(conversions=1, value=8),
        ("A",): PathCount(nulls=1),
        ("B",): PathCount(conversions=1, value=2),
    }
    assert shapley_values(stats) == ShapleyValues({"A": 0.5, "B": 1.5}, {"A": 4.0, "B": 6.0})


def test_repeats_and_order_do_not_matter() -> None:
    """A>B>A>B (2 conversions) and B>A (2) are both the set {A,B}: 4/2 = 2 each."""
    stats = {("A", "B", "A", "B"): PathCount(conversions=2), ("B", "A"): PathCount(conversions=2)}
    assert shapley_values(stats).conversions == {"A": 2.0, "B": 2.0}


def test_single_channel_and_nothing() -> None:
    """One channel: φ_A = R({A}) = 2. No seen journey (the empty path, a 0-journey path):
    no players. A channel on null paths only: φ = 0."""
    assert shapley_values({("A",): PathCount(conversions=2, nulls=2)}).conversions == {"A": 2.0}
    assert shapley_values({(): PathCount(conversions=1), ("B",): PathCount()}) == ShapleyValues({}, {})
    assert shapley_values({("A",): PathCount(nulls=5)}).conversions == {"A": 0.0}


def test_many_channels_are_exact() -> None:
    """Any number of channels, no sampling: 40 channels on one path of 2 conversions and
    each channel alone on a null path: 2/40 = 0.05 each."""
    names = tuple(f"ch{i:02d}" for i in range(40))
    stats = {names: PathCount(conversions=2, value=80), **{(n,): PathCount(nulls=1) for n in names}}
    got = shapley_values(stats)
    assert got.conversions == dict.fromkeys(names, 0.05) and got.value == dict.fromkeys(names, 2.0)


# --- simplified Shapley: properties -------------------------------------------------


@given(stats_st)
def test_nonnegative_efficient_and_nothing_for_no_conversion(stats) -> None:
    """φ >= 0; Σ φ = total conversions (value game: total value); a channel on no
    converting path gets 0 in the conversions game."""
    got = shapley_values(stats)
    conversions, value = seen_totals(stats)
    assert all(phi >= 0 for phi in [*got.conversions.values(), *got.value.values()])
    assert math.fsum(got.conversions.values()) == pytest.approx(conversions, abs=1e-9)
    assert math.fsum(got.value.values()) == pytest.approx(value, abs=1e-6)
    for ch in set(got.conversions) - converting_channels(stats):
        assert got.conversions[ch] == 0.0


@given(stats_st)
def test_symmetry(stats) -> None:
    """`e` added right after every `a`: a and e always appear together, so φ_a = φ_e."""
    paired = {}
    for path, count in stats.items():
        path = tuple(x for ch in path if ch != "e" for x in ((ch, "e") if ch == "a" else (ch,)))
        paired[path] = paired[path] + count if path in paired else count
    got = shapley_values(paired)
    if "a" in got.conversions:
        assert got.conversions["a"] == pytest.approx(got.conversions["e"], abs=1e-12)
        assert got.value["a"] == pytest.approx(got.value["e"], abs=1e-9)


# --- simplified Shapley: shares and totals --------------------------------------------


def test_shares_by_hand() -> None:
    """φ A 17/6, B 17/6, C 1/3 on journey A>B>C>A (repeats count): weights 17, 17, 2, 17
    (× 1/6), Σ 53: shares 17/53, 17/53, 2/53, 17/53."""
    shares = shapley_shares(journey("A", "B", "C", "A"), shapley_values(THREE).conversions)
    assert shares == pytest.approx((17 / 53, 17 / 53, 2 / 53, 17 / 53), abs=1e-12)


def test_shares_fall_back_to_linear() -> None:
    """Only zero weights, or an unknown channel: 1/n each; no touches: ()."""
    assert shapley_shares(journey("C", "C"), {"C": 0.0}) == (0.5, 0.5)
    assert shapley_shares(journey("A", "Z"), {"A": 1.0}) == (0.5, 0.5)
    assert shapley_shares(journey(), {"A": 1.0}) == ()


@given(stats_st, st.lists(st.sampled_from((*CHANNELS, "zz")), min_size=1, max_size=6))
def test_shares_are_nonnegative_and_sum_to_one(stats, channels) -> None:
    for shares in (
        shapley_shares(journey(*channels), shapley_values(stats).conversions),
        ordered_shares(journey(*channels), ordered_values(stats).conversions),
    ):
        assert len(shares) == len(channels)
        assert all(s >= 0 for s in shares)
        assert math.fsum(shares) == pytest.approx(1.0, abs=1e-12)


def test_channel_totals_are_phi() -> None:
    """Totals are φ itself: A 17/6 conversions and 185/3 value, B 17/6 and 215/3, C 1/3 and 50/3."""
    totals = channel_totals(shapley_values(THREE))
    assert close(
        totals,
        {
            "A": {"conversions": 17 / 6, "value": 185 / 3},
            "B": {"conversions": 17 / 6, "value": 215 / 3},
            "C": {"conversions": 1 / 3, "value": 50 / 3},
        },
    )


# --- ordered Shapley --------------------------------------------------------------------


def test_ordered_by_hand() -> None:
    """Each journey's R/|S| of a channel credited at the positions it appears at, split evenly:
      A 1 -> A@1 1;  B 1 -> B@1 1;  A>B 2 -> A@1 1, B@2 1;  B>A 1 -> B@1 1/2, A@2 1/2;
      C>A>B>C 1 ({A,B,C}, C twice) -> C@1 1/6, A@2 1/3, B@3 1/3, C@4 1/6;
      C, C>C null -> C@1 0, C@2 0.
    φ_A = (1 + 1, 1/2 + 1/3) = (2, 5/6), Σ 17/6; φ_B = (1 + 1/2, 1, 1/3) = (3/2, 1, 1/3),
    Σ 17/6; φ_C = (1/6, 0, 0, 1/6), Σ 1/3: the totals of `shapley`.
    Value: A 10 -> A@1 10; B 20 -> B@1 20; A>B 30 -> A@1 15, B@2 15; B>A 40 -> B@1 20,
      A@2 20; C>A>B>C 50 -> C@1 25/3, A@2 50/3, B@3 50/3, C@4 25/3.
    A = (25, 20 + 50/3 = 110/3), Σ 185/3; B = (40, 15, 50/3), Σ 215/3; C = (25/3, 0, 0, 25/3).
    """
    got = ordered_values(THREE)
    assert close(got.conversions, {"A": (2.0, 5 / 6), "B": (1.5, 1.0, 1 / 3), "C": (1 / 6, 0, 0, 1 / 6)})
    assert close(got.value, {"A": (25.0, 110 / 3), "B": (40.0, 15.0, 50 / 3), "C": (25 / 3, 0, 0, 25 / 3)})
    assert close(
        ordered_totals(got)["A"],
        {
            "conversions": 17 / 6,
            "value": 185 / 3,
            "positions": [2.0, 5 / 6],
            "value_positions": [25, 110 / 3],
        },
    )


def test_ordered_repeats_split_a_channels_credit() -> None:
    """B>A>B, 1 conversion: {A, B}, 1/2 each; B appears twice: 1/4 at 1 and 1/4 at 3."""
    got = ordered_values({("B", "A", "B"): PathCount(conversions=1)})
    assert got.conversions == {"A": (0.0, 0.5), "B": (0.25, 0.0, 0.25)}


def test_ordered_gaps_and_unseen() -> None:
    """A seen at positions 1 (A, 2 conversions) and 3 (B>C>A, 3 conversions: 1 each), never
    at 2: φ_A = (2, 0, 1). D on a null path only: (0,). Nothing seen: nothing."""
    stats = {
        ("A",): PathCount(conversions=2),
        ("B", "C", "A"): PathCount(conversions=3),
        ("D",): PathCount(nulls=1),
    }
    assert ordered_values(stats).conversions == {
        "A": (2.0, 0.0, 1.0),
        "B": (1.0,),
        "C": (0.0, 1.0),
        "D": (0.0,),
    }
    assert ordered_values({(): PathCount(conversions=1)}) == OrderedValues({}, {})


def test_ordered_shares_by_hand() -> None:
    """THREE, journey C>A>B: weights φ_C^1 = 1/6, φ_A^2 = 5/6, φ_B^3 = 1/3; Σ = 4/3.
    Shares: (1/6)/(4/3) = 1/8, (5/6)/(4/3) = 5/8, (1/3)/(4/3) = 1/4.
    The module docstring's example: A>B>A with φ_A = (0.6, 0.1, 0.3), φ_B = (0.5, 0.2):
    weights 0.6, 0.2, 0.3; Σ = 1.1: 6/11, 2/11, 3/11."""
    positions = ordered_values(THREE).conversions
    assert ordered_shares(journey("C", "A", "B"), positions) == pytest.approx(
        (1 / 8, 5 / 8, 1 / 4), abs=1e-12
    )
    example = {"A": (0.6, 0.1, 0.3), "B": (0.5, 0.2)}
    assert ordered_shares(journey("A", "B", "A"), example) == pytest.approx(
        (6 / 11, 2 / 11, 3 / 11), abs=1e-12
    )


def test_ordered_shares_fall_back_to_linear() -> None:
    """THREE: A never seen past position 2, so C>A>B>A (A at 4) is unknown: linear. An unknown
    channel: linear. Weights summing to 0 (D at 1 only on a null path): linear. No touches: ()."""
    positions = ordered_values(THREE).conversions
    assert ordered_shares(journey("C", "A", "B", "A"), positions) == pytest.approx((1 / 4,) * 4)
    assert ordered_shares(journey("A", "Z"), positions) == (0.5, 0.5)
    assert ordered_shares(journey("D", "D"), {"D": (0.0,)}) == (0.5, 0.5)
    assert ordered_shares(journey(), positions) == ()


@given(stats_st)
def test_ordered_positions_sum_to_phi(stats) -> None:
    """Σ_t φ_c^t = φ_c for both games; same channels; every φ_c^t >= 0."""
    flat, ordered = shapley_values(stats), ordered_values(stats)
    assert list(ordered.conversions) == list(flat.conversions)
    for ch, phi in flat.conversions.items():
        assert all(x >= 0 for x in ordered.conversions[ch])
        assert len(ordered.value[ch]) == len(ordered.conversions[ch])
        assert math.fsum(ordered.conversions[ch]) == pytest.approx(phi, abs=1e-9)
        assert math.fsum(ordered.value[ch]) == pytest.approx(flat.value[ch], abs=1e-6)
