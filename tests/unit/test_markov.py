"""The `markov` model and path counts (DESIGN.md §7) on hand-computed examples.

Notation in the docstrings: `s -> t p` is the transition probability from
state s to t; x(s) is the probability of absorbing into (conversion) from s;
P = x(start); P\\c is P with channel c removed. For value: v̄(s) is the mean value of
the conversions whose path ends at s, xv(s) the expected value earned from s
(xv(s) = Σ_t (s -> t) xv(t) + (s -> conv) v̄(s)), V = xv(start), V\\c with c removed,
REv_c = 1 − V\\c / V.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.attribution.markov import (
    Effects,
    channel_totals,
    effects,
    markov_shares,
    removal_effects,
    value_removal_effects,
)
from stream.attribution.paths import (
    PathCount,
    fold_tail,
    format_path,
    merge,
    parse_path,
)
from stream.core.records import AttributionInput, Touchpoint
from tests.support.strategies import path_stats

# --- builders and strategies -----------------------------------------------------


def conv(n: float, value: float = 0.0) -> PathCount:
    return PathCount(conversions=n, value=value)


def null(n: float) -> PathCount:
    return PathCount(nulls=n)


def journey(*channels: str) -> AttributionInput:
    touches = tuple(Touchpoint(ts=k, channel=c, session_id=f"s{k}") for k, c in enumerate(channels))
    return AttributionInput(touches=touches, conversion_ts=len(channels))


CHANNELS = ("a", "b", "c", "d")
stats_st = path_stats(CHANNELS, 8)

# A>B: 1 conversion (value 10), A: 1 null, B: 1 conversion (value 5).
BASIC = {("A", "B"): conv(1, 10.0), ("A",): null(1), ("B",): conv(1, 5.0)}


# --- hand-computed removal effects ------------------------------------------------


def test_order_1_basic() -> None:
    """Paths A>B (1 conv), A (1 null), B (1 conv).

    Counts: start->A 2, start->B 1; A->B 1, A->null 1; B->conv 2.
    So start->A 2/3, start->B 1/3, A->B 1/2, A->null 1/2, B->conv 1.
    x(B) = 1, x(A) = 1/2 · x(B) = 1/2, P = 2/3 · 1/2 + 1/3 · 1 = 2/3.
    Without A: start->A goes to null, P\\A = 1/3 · 1 = 1/3, RE_A = 1 − (1/3)/(2/3) = 1/2.
    Without B: every way to conversion passes B, P\\B = 0, RE_B = 1 − 0 = 1.
    """
    assert removal_effects(BASIC) == pytest.approx({"A": 0.5, "B": 1.0}, abs=1e-12)


def test_order_2_remembers_what_order_1_forgets() -> None:
    """Paths A>B>C (1 conv), B>C (1 null), A>C (1 conv).

    Order 2 states: (A), (B), (A,B), (B,C), (A,C).
    start->(A) 2/3, start->(B) 1/3; (A)->(A,B) 1/2, (A)->(A,C) 1/2;
    (A,B)->(B,C) 1; (B)->(B,C) 1; (B,C)->conv 1/2, ->null 1/2; (A,C)->conv 1.
    x(B,C) = 1/2, x(A,C) = 1, x(A,B) = 1/2, x(A) = 1/2·1/2 + 1/2·1 = 3/4,
    x(B) = 1/2, P = 2/3·3/4 + 1/3·1/2 = 1/2 + 1/6 = 2/3.
    Without A ((A), (A,B), (A,C) gone): P\\A = 1/3·1/2 = 1/6, RE_A = 1 − (1/6)/(2/3) = 3/4.
    Without B ((B), (A,B), (B,C) gone): P\\B = 2/3·(1/2·0 + 1/2·1) = 1/3, RE_B = 1 − 1/2 = 1/2.
    Without C ((B,C), (A,C) gone): P\\C = 0, RE_C = 1.

    Order 1: start->A 2/3, start->B 1/3, A->B 1/2, A->C 1/2, B->C 1,
    C->conv 2/3 (2 conv, 1 null). x(C) = x(B) = x(A) = 2/3, P = 2/3.
    P\\A = 1/3·2/3 = 2/9, RE_A = 1 − 1/3 = 2/3; P\\B = 2/3·1/2·2/3 = 2/9, RE_B = 2/3;
    P\\C = 0, RE_C = 1.
    """
    stats = {("A", "B", "C"): conv(1), ("B", "C"): null(1), ("A", "C"): conv(1)}
    assert removal_effects(stats, order=2) == pytest.approx({"A": 0.75, "B": 0.5, "C": 1.0}, abs=1e-12)
    assert removal_effects(stats, order=1) == pytest.approx({"A": 2 / 3, "B": 2 / 3, "C": 1.0}, abs=1e-12)


def test_single_channel() -> None:
    """Path A: 2 conv, 2 null. start->A 1, A->conv 1/2: P = 1/2; P\\A = 0; RE_A = 1."""
    assert removal_effects({("A",): PathCount(conversions=2, nulls=2)}) == {"A": 1.0}


def test_repeats_are_self_loops() -> None:
    """Path A>A>B (1 conv), A (1 null): A->A 1/3, A->B 1/3, A->null 1/3, B->conv 1.

    x(A) = 1/3·x(A) + 1/3 => x(A) = 1/2; P = 1/2; P\\A = 0, RE_A = 1; P\\B = 0, RE_B = 1.
    """
    assert removal_effects({("A", "A", "B"): conv(1), ("A",): null(1)}) == {"A": 1.0, "B": 1.0}


def test_channel_on_no_converting_path_gets_zero() -> None:
    """Paths A>C (1 conv), B>C (1 null).

    Order 1: start->A 1/2, start->B 1/2, A->C 1, B->C 1, C->conv 1/2: P = 1/2.
    The chain alone would give P\\B = 1/2·1/2 = 1/4 and RE_B = 1/2 (it forgets
    that walks through B never convert); B is on no converting path, so RE_B = 0.
    P\\A = 1/4, RE_A = 1/2; P\\C = 0, RE_C = 1.
    """
    stats = {("A", "C"): conv(1), ("B", "C"): null(1)}
    assert removal_effects(stats) == pytest.approx({"A": 0.5, "B": 0.0, "C": 1.0}, abs=1e-12)


def test_no_conversions_gives_zeros() -> None:
    """All paths null: P = 0, every RE is 0 (not NaN)."""
    stats = {("A", "B"): null(3), ("B",): null(1)}
    assert removal_effects(stats) == {"A": 0.0, "B": 0.0}
    assert removal_effects(stats, order=3) == {"A": 0.0, "B": 0.0}


def test_unseen_paths_are_ignored() -> None:
    """The empty path and zero-count paths add nothing: only A (null) is seen, P = 0."""
    stats = {(): conv(3), ("A",): null(1), ("B",): PathCount()}
    assert removal_effects(stats) == {"A": 0.0}
    assert removal_effects({}) == {}


# --- hand-computed value removal effects ------------------------------------------

# A: 1 conversion of value 100; B: 1 conversion of value 10 and 1 null; A>B: 1 conversion of 10.
HIGH = {
    ("A",): conv(1, 100.0),
    ("B",): PathCount(conversions=1, value=10.0, nulls=1),
    ("A", "B"): conv(1, 10.0),
}


def test_value_order_1_high_value_channel() -> None:
    """HIGH, order 1. Counts: start->A 2, start->B 2; A->conv 1, A->B 1; B->conv 2, B->null 1.
    start->A 1/2, start->B 1/2, A->conv 1/2, A->B 1/2, B->conv 2/3, B->null 1/3.
    x(B) = 2/3, x(A) = 1/2 + 1/2·2/3 = 5/6, P = 1/2·5/6 + 1/2·2/3 = 3/4 (3 of 4 journeys).
    P\\A = 1/2·2/3 = 1/3: RE_A = 1 − (1/3)/(3/4) = 5/9. P\\B = 1/2·1/2 = 1/4: RE_B = 2/3.
    v̄(A) = 100/1 = 100, v̄(B) = (10 + 10)/2 = 10.
    xv(B) = 2/3·10 = 20/3; xv(A) = 1/2·100 + 1/2·20/3 = 160/3;
    V = 1/2·160/3 + 1/2·20/3 = 30 (value 120 over 4 journeys).
    V\\A = 1/2·20/3 = 10/3: REv_A = 1 − (10/3)/30 = 8/9 > RE_A = 5/9 (A's conversions are the
    valuable ones). V\\B = 1/2·1/2·100 = 25: REv_B = 1 − 25/30 = 1/6 < RE_B = 2/3.
    """
    got = effects(HIGH)
    assert got.order == 1
    assert got.conversions == pytest.approx({"A": 5 / 9, "B": 2 / 3}, abs=1e-12)
    assert got.value == pytest.approx({"A": 8 / 9, "B": 1 / 6}, abs=1e-12)
    assert value_removal_effects(HIGH) == got.value and removal_effects(HIGH) == got.conversions


def test_value_order_2_remembers_what_preceded() -> None:
    """A>C 1 conversion of value 100; B>C 1 conversion of value 10 and 1 null. A only ever
    precedes the high-value conversion.

    Order 2 states (A), (B), (A,C), (B,C): start->(A) 1/3, start->(B) 2/3, (A)->(A,C) 1,
    (B)->(B,C) 1, (A,C)->conv 1, (B,C)->conv 1/2, (B,C)->null 1/2.
    P = 1/3·1 + 2/3·1/2 = 2/3; P\\A = 2/3·1/2 = 1/3, RE_A = 1/2; P\\B = 1/3, RE_B = 1/2;
    P\\C = 0, RE_C = 1.
    v̄(A,C) = 100, v̄(B,C) = 10: V = 1/3·100 + 2/3·1/2·10 = 110/3 (110 over 3 journeys).
    V\\A = 10/3: REv_A = 1 − 1/11 = 10/11 > RE_A; V\\B = 100/3: REv_B = 1/11; V\\C = 0: REv_C = 1.

    Order 1 forgets where C was reached from: states A, B, C; start->A 1/3, start->B 2/3,
    A->C 1, B->C 1, C->conv 2/3, C->null 1/3, v̄(C) = 110/2 = 55.
    P = 2/3; P\\A = 2/3·2/3 = 4/9, RE_A = 1/3; P\\B = 1/3·2/3 = 2/9, RE_B = 2/3; RE_C = 1.
    V = 2/3·55 = 110/3; V\\A = 2/3·2/3·55, REv_A = 1/3 = RE_A; REv_B = 2/3 = RE_B; REv_C = 1.
    """
    stats = {("A", "C"): conv(1, 100.0), ("B", "C"): PathCount(conversions=1, value=10.0, nulls=1)}
    order_2 = effects(stats, order=2)
    assert order_2.conversions == pytest.approx({"A": 0.5, "B": 0.5, "C": 1.0}, abs=1e-12)
    assert order_2.value == pytest.approx({"A": 10 / 11, "B": 1 / 11, "C": 1.0}, abs=1e-12)
    order_1 = effects(stats, order=1)
    assert order_1.conversions == pytest.approx({"A": 1 / 3, "B": 2 / 3, "C": 1.0}, abs=1e-12)
    assert order_1.value == pytest.approx({"A": 1 / 3, "B": 2 / 3, "C": 1.0}, abs=1e-12)


def test_value_effects_zero_without_value_or_conversion() -> None:
    """Conversions of value 0: V = 0, every REv 0 while RE is not (BASIC's RE without value:
    A 1/2, B 1). A channel on no converting path gets REv 0 (A>C 10 and B>C null, order 1: the
    chain alone would give B 1/2, as for RE). No conversion: all 0."""
    no_value = {("A", "B"): conv(1), ("A",): null(1), ("B",): conv(1)}
    assert effects(no_value) == Effects(1, pytest.approx({"A": 0.5, "B": 1.0}), {"A": 0.0, "B": 0.0})
    assert effects({("A", "C"): conv(1, 10.0), ("B", "C"): null(1)}).value == pytest.approx(
        {"A": 0.5, "B": 0.0, "C": 1.0}, abs=1e-12
    )
    assert effects({("A",): null(2)}) == Effects(1, {"A": 0.0}, {"A": 0.0})


def test_order_must_be_positive() -> None:
    with pytest.raises(ValueError):
        removal_effects(BASIC, order=0)


def naive_p_conversion(stats, order: int, removed: str | None, value: bool = False) -> float:
    """P(conv) by the definition: build the chain, redirect entries of `removed` states, solve.
    With `value`: V, the expected value, each step into conversion from s earning v̄(s)."""
    counts: dict[tuple, dict[object, float]] = {}
    earned: dict[tuple, list[float]] = {}  # state -> [conversions, value] ending there
    for path, c in stats.items():
        if not path or c.conversions + c.nulls == 0:
            continue
        walk = [(), *(path[max(0, i + 1 - order) : i + 1] for i in range(len(path)))]
        for a, b in zip(walk, [*walk[1:], "(conversion)"], strict=True):
            out = counts.setdefault(a, {})
            w = c.conversions if b == "(conversion)" else c.conversions + c.nulls
            out[b] = out.get(b, 0.0) + w
        out = counts.setdefault(walk[-1], {})
        out["(null)"] = out.get("(null)", 0.0) + c.nulls
        end = earned.setdefault(walk[-1], [0.0, 0.0])
        end[0] += c.conversions
        end[1] += c.value if c.conversions else 0.0
    states = [s for s in counts if removed is None or removed not in s]
    if () not in states:
        return 0.0
    index = {s: i for i, s in enumerate(states)}
    a, r = np.eye(len(states)), np.zeros(len(states))
    for s in states:
        total = sum(counts[s].values())
        for t, w in counts[s].items():
            if t == "(conversion)":
                mean = earned[s][1] / earned[s][0] if value and w else 1.0
                r[index[s]] += w / total * mean
            elif t in index:
                a[index[s], index[t]] -= w / total
    return float(np.linalg.solve(a, r)[index[()]])


@given(stats_st, st.integers(1, 3))
def test_effects_match_the_definition(stats, order) -> None:
    """RE_c = 1 − P(conv without c)/P(conv) by a direct solve per removal (on converting channels)."""
    found = removal_effects(stats, order)
    p = naive_p_conversion(stats, order, None)
    converting = {ch for path, c in stats.items() if c.conversions > 0 for ch in path}
    for ch in converting:
        expected = 1 - naive_p_conversion(stats, order, ch) / p
        assert found[ch] == pytest.approx(expected, abs=1e-9)


@given(stats_st, st.integers(1, 3))
def test_value_effects_match_the_definition(stats, order) -> None:
    """REv_c = 1 − V(without c)/V by a direct solve per removal, clipped to [0, 1]; 0 when V = 0
    and for a channel on no converting path."""
    found = value_removal_effects(stats, order)
    v = naive_p_conversion(stats, order, None, value=True)
    converting = {ch for path, c in stats.items() if c.conversions > 0 for ch in path}
    assert list(found) == sorted(found)
    for ch, rev in found.items():
        if ch not in converting or not v > 1e-9:
            assert rev == 0.0
            continue
        expected = 1 - naive_p_conversion(stats, order, ch, value=True) / v
        assert rev == pytest.approx(min(max(expected, 0.0), 1.0), abs=1e-9)


@given(stats_st, st.integers(1, 3))
def test_effects_are_in_unit_interval_and_zero_off_converting_paths(stats, order) -> None:
    found = effects(stats, order)
    converting = {ch for path, c in stats.items() if c.conversions > 0 for ch in path}
    assert list(found.conversions) == sorted(found.conversions) == list(found.value)
    for ch, re in found.conversions.items():
        assert 0.0 <= re <= 1.0 and 0.0 <= found.value[ch] <= 1.0
        if ch not in converting:
            assert re == 0.0 == found.value[ch]


# --- shares and totals -------------------------------------------------------


def test_shares_with_repeats() -> None:
    """RE A 1/2, B 1 on journey A, A, B: weights 1/2, 1/2, 1, sum 2 -> 1/4, 1/4, 1/2."""
    assert markov_shares(journey("A", "A", "B"), {"A": 0.5, "B": 1.0}) == (0.25, 0.25, 0.5)


def test_shares_fall_back_to_linear() -> None:
    """Σ RE = 0, or a channel unknown to the snapshot: 1/n each; no touches: ()."""
    assert markov_shares(journey("A", "B"), {"A": 0.0, "B": 0.0}) == (0.5, 0.5)
    assert markov_shares(journey("A", "Z"), {"A": 1.0}) == (0.5, 0.5)
    assert markov_shares(journey(), {"A": 1.0}) == ()


@given(stats_st, st.lists(st.sampled_from((*CHANNELS, "zz")), min_size=1, max_size=6))
def test_shares_are_nonnegative_and_sum_to_one(stats, channels) -> None:
    shares = markov_shares(journey(*channels), removal_effects(stats))
    assert len(shares) == len(channels)
    assert all(s >= 0 for s in shares)
    assert math.fsum(shares) == pytest.approx(1.0, abs=1e-12)


def test_channel_totals_by_hand() -> None:
    """HIGH (see above): RE A 5/9, B 2/3 (Σ 11/9); REv A 8/9, B 1/6 (Σ 19/18); 3 conversions,
    value 120. Conversions by RE: A 3·5/11 = 15/11, B 3·6/11 = 18/11. Value by REv:
    A 120·(16/18)/(19/18) = 1920/19, B 120·(3/18)/(19/18) = 360/19.
    """
    totals = channel_totals(HIGH, effects(HIGH))
    assert totals["A"] == pytest.approx(
        {"conversions": 15 / 11, "value": 1920 / 19, "removal_effect": 5 / 9, "value_removal_effect": 8 / 9}
    )
    assert totals["B"] == pytest.approx(
        {"conversions": 18 / 11, "value": 360 / 19, "removal_effect": 2 / 3, "value_removal_effect": 1 / 6}
    )
    zeros = channel_totals(BASIC, Effects(1, {"A": 0.0, "B": 0.0}, {"A": 0.0, "B": 0.0}))
    assert zeros["A"] == {
        "conversions": 0.0,
        "value": 0.0,
        "removal_effect": 0.0,
        "value_removal_effect": 0.0,
    }


@given(stats_st)
def test_channel_totals_conserve_conversions_and_value(stats) -> None:
    found = effects(stats)
    if not (sum(found.conversions.values()) > 0 and sum(found.value.values()) > 0):
        return
    totals = channel_totals(stats, found)
    expected_conversions = sum(c.conversions for c in stats.values())
    expected_value = sum(c.value for p, c in stats.items() if c.conversions + c.nulls > 0)
    assert sum(t["conversions"] for t in totals.values()) == pytest.approx(expected_conversions)
    assert sum(t["value"] for t in totals.values()) == pytest.approx(expected_value)


# --- paths ---------------------------------------------------------------


def test_parse_and_format() -> None:
    assert parse_path(" seo >email>  paid search ") == ("seo", "email", "paid search")
    assert format_path(("seo", "email")) == "seo > email"
    for bad in ("", "  ", "a > > b", "a >"):
        with pytest.raises(ValueError):
            parse_path(bad)
    for bad_path in ((), ("a>b",), (" a",), ("",)):
        with pytest.raises(ValueError):
            format_path(bad_path)


@given(st.lists(st.text(min_size=1).map(str.strip).filter(lambda s: s and ">" not in s), min_size=1))
def test_parse_format_round_trip(channels) -> None:
    path = tuple(channels)
    assert parse_path(format_path(path)) == path


def test_path_count_add_and_validate() -> None:
    assert PathCount(1, 2, 3) + PathCount(4, 5, 6) == PathCount(5, 7, 9)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            PathCount(conversions=bad)


def test_merge() -> None:
    left = {("a",): conv(1, 2.0), ("a", "b"): null(1)}
    right = {("a",): null(2)}
    assert merge(left, right) == {("a",): PathCount(1, 2.0, 2), ("a", "b"): null(1)}
    assert merge() == {}


def test_fold_tail() -> None:
    """Journeys: a 5, b>a 3, c 3, d 1. Keep 2: a (5), then b > a before c (tie on 3, by text)."""
    stats = {("d",): null(1), ("c",): conv(3, 9.0), ("b", "a"): null(3), ("a",): conv(5)}
    assert fold_tail(stats, 2) == {("a",): conv(5), ("b", "a"): null(3), ("(other)",): PathCount(3, 9.0, 1)}
    assert fold_tail(stats, 4) == stats
    assert fold_tail(stats, 0) == {("(other)",): PathCount(8, 9.0, 4)}
    with pytest.raises(ValueError):
        fold_tail(stats, -1)


@given(stats_st, st.integers(0, 10))
def test_fold_tail_keeps_totals(stats, max_paths) -> None:
    folded = fold_tail(stats, max_paths)
    assert len(folded) <= max_paths + 1
    total = sum(stats.values(), PathCount())
    folded_total = sum(folded.values(), PathCount())
    assert folded_total.conversions == pytest.approx(total.conversions)
    assert folded_total.nulls == pytest.approx(total.nulls)
