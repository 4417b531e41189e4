"""The `markov` model and path counts (DESIGN.md §7) on hand-computed examples.

Notation in the docstrings: `s -> t p` is the transition probability from
state s to t; x(s) is the probability of absorbing into (conversion) from s;
P = x(start); P\\c is P with channel c removed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.attribution.markov import channel_totals, markov_shares, removal_effects
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


def test_order_must_be_positive() -> None:
    with pytest.raises(ValueError):
        removal_effects(BASIC, order=0)


def naive_p_conversion(stats, order: int, removed: str | None) -> float:
    """P(conv) by the definition: build the chain, redirect entries of `removed` states, solve."""
    counts: dict[tuple, dict[object, float]] = {}
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
    states = [s for s in counts if removed is None or removed not in s]
    if () not in states:
        return 0.0
    index = {s: i for i, s in enumerate(states)}
    a, r = np.eye(len(states)), np.zeros(len(states))
    for s in states:
        total = sum(counts[s].values())
        for t, w in counts[s].items():
            if t == "(conversion)":
                r[index[s]] += w / total
            elif t in index:
                a[index[s], index[t]] -= w / total
    return float(np.linalg.solve(a, r)[index[()]])


@given(stats_st, st.integers(1, 3))
def test_effects_match_the_definition(stats, order) -> None:
    """RE_c = 1 − P(conv without c)/P(conv) by a direct solve per removal (on converting channels)."""
    effects = removal_effects(stats, order)
    p = naive_p_conversion(stats, order, None)
    converting = {ch for path, c in stats.items() if c.conversions > 0 for ch in path}
    for ch in converting:
        expected = 1 - naive_p_conversion(stats, order, ch) / p
        assert effects[ch] == pytest.approx(expected, abs=1e-9)


@given(stats_st, st.integers(1, 3))
def test_effects_are_in_unit_interval_and_zero_off_converting_paths(stats, order) -> None:
    effects = removal_effects(stats, order)
    converting = {ch for path, c in stats.items() if c.conversions > 0 for ch in path}
    assert list(effects) == sorted(effects)
    for ch, re in effects.items():
        assert 0.0 <= re <= 1.0
        if ch not in converting:
            assert re == 0.0


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
    """BASIC: RE A 1/2, B 1, Σ 3/2; 2 conversions, value 15.

    A: 2 · (1/2)/(3/2) = 2/3 conversions, 15 · 1/3 = 5 value; B: 4/3 and 10.
    """
    totals = channel_totals(BASIC, removal_effects(BASIC))
    assert totals["A"] == pytest.approx({"conversions": 2 / 3, "value": 5.0})
    assert totals["B"] == pytest.approx({"conversions": 4 / 3, "value": 10.0})
    assert channel_totals(BASIC, {"A": 0.0, "B": 0.0})["A"] == {"conversions": 0.0, "value": 0.0}


@given(stats_st)
def test_channel_totals_conserve_conversions_and_value(stats) -> None:
    effects = removal_effects(stats)
    if not sum(effects.values()) > 0:
        return
    totals = channel_totals(stats, effects)
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
