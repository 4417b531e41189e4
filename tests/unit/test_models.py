"""Heuristic attribution models (DESIGN.md §7) on hand-computed journeys.

Journeys are built with `journey(...)`: touch tk (1-based) is at ts k*STEP,
so `lead_ts=at(3)` means "the lead happened at t3".
"""

from __future__ import annotations

import pytest

from stream.attribution import HEURISTIC
from stream.attribution.heuristic import (
    first_touch,
    full_path,
    inverse_j,
    j_shaped,
    last_non_direct,
    last_touch,
    linear,
    position_based,
    time_decay,
    w_shaped,
)
from stream.core.config import ModelParams
from stream.core.records import AttributionInput
from tests.support.attribution import PARAMS, at, exactly, journey, n_touches, shares_of, touch

# --- every model -------------------------------------------------------------


@pytest.mark.parametrize("name", HEURISTIC)
def test_no_touches_gives_no_shares(name: str) -> None:
    assert shares_of(name, n_touches(0, conversion_ts=0)) == ()


@pytest.mark.parametrize("name", HEURISTIC)
def test_single_touch_gets_everything(name: str) -> None:
    assert shares_of(name, journey("direct")) == exactly(1.0)


# --- single-touch models -----------------------------------------------------


def test_first_touch() -> None:
    assert first_touch(journey("email", "direct", "paid_search"), PARAMS) == (1.0, 0.0, 0.0)
    assert first_touch(n_touches(2), PARAMS) == (1.0, 0.0)


def test_last_touch() -> None:
    assert last_touch(journey("email", "direct", "paid_search"), PARAMS) == (0.0, 0.0, 1.0)
    assert last_touch(n_touches(2), PARAMS) == (0.0, 1.0)


def test_last_non_direct_skips_trailing_direct() -> None:
    shares = last_non_direct(journey("email", "paid_search", "direct", "direct"), PARAMS)
    assert shares == (0.0, 1.0, 0.0, 0.0)


def test_last_non_direct_takes_the_last_touch_when_it_is_not_direct() -> None:
    assert last_non_direct(journey("direct", "direct", "email"), PARAMS) == (0.0, 0.0, 1.0)


def test_last_non_direct_all_direct_falls_back_to_last_touch() -> None:
    assert last_non_direct(journey("direct", "direct", "direct"), PARAMS) == (0.0, 0.0, 1.0)


# --- linear and position-based -----------------------------------------------


def test_linear_counts_repeats_separately() -> None:
    assert linear(journey("email", "email", "direct"), PARAMS) == exactly(1 / 3, 1 / 3, 1 / 3)
    assert linear(n_touches(4), PARAMS) == exactly(0.25, 0.25, 0.25, 0.25)


def test_position_based_two_touches_split_evenly() -> None:
    assert position_based(n_touches(2), PARAMS) == exactly(0.5, 0.5)
    lopsided = ModelParams(position_weights=(0.1, 0.1, 0.8))
    assert position_based(n_touches(2), lopsided) == exactly(0.5, 0.5)


def test_position_based_default_weights() -> None:
    assert position_based(n_touches(3), PARAMS) == exactly(0.4, 0.2, 0.4)
    # five touches: the three middles share 0.2
    assert position_based(n_touches(5), PARAMS) == exactly(0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4)


def test_position_based_custom_weights() -> None:
    params = ModelParams(position_weights=(0.3, 0.4, 0.3))
    assert position_based(n_touches(4), params) == exactly(0.3, 0.2, 0.2, 0.3)


def test_position_based_weights_not_summing_to_one_are_normalised() -> None:
    """(2, 1, 1) sums to 4: t1 2/4, middles 1/4 shared, tn 1/4."""
    params = ModelParams(position_weights=(2.0, 1.0, 1.0))
    assert position_based(n_touches(3), params) == exactly(0.5, 0.25, 0.25)
    assert position_based(n_touches(4), params) == exactly(0.5, 0.125, 0.125, 0.25)


def test_position_based_rejects_weights_without_a_positive_sum() -> None:
    with pytest.raises(ValueError, match="positive sum"):
        position_based(n_touches(3), ModelParams(position_weights=(0.0, 0.0, 0.0)))


# --- J shapes ----------------------------------------------------------------


def test_j_shaped() -> None:
    assert j_shaped(n_touches(2), PARAMS) == exactly(0.25, 0.75)
    assert j_shaped(n_touches(3), PARAMS) == exactly(0.2, 0.2, 0.6)
    assert j_shaped(n_touches(4), PARAMS) == exactly(0.2, 0.1, 0.1, 0.6)


def test_inverse_j() -> None:
    assert inverse_j(n_touches(2), PARAMS) == exactly(0.75, 0.25)
    assert inverse_j(n_touches(3), PARAMS) == exactly(0.6, 0.2, 0.2)
    assert inverse_j(n_touches(4), PARAMS) == exactly(0.6, 0.1, 0.1, 0.2)


# --- time decay --------------------------------------------------------------


def test_time_decay_one_half_life_apart() -> None:
    """Touches at 0, H, 2H and the conversion at 2H.

    Δt = 2H, H, 0 so the weights are 2^-2, 2^-1, 2^0 = 1/4, 1/2, 1; they sum
    to 7/4, so the shares are 1/7, 2/7, 4/7.
    """
    h = 3_600_000
    inp = AttributionInput(
        touches=(touch(0), touch(h), touch(2 * h)),
        conversion_ts=2 * h,
    )
    assert time_decay(inp, ModelParams(half_life_ms=h)) == exactly(1 / 7, 2 / 7, 4 / 7)


def test_time_decay_only_relative_ages_matter() -> None:
    """Converting one more half-life later halves every weight: same shares."""
    h = PARAMS.half_life_ms
    inp = AttributionInput(touches=(touch(0), touch(h), touch(2 * h)), conversion_ts=3 * h)
    assert time_decay(inp, PARAMS) == exactly(1 / 7, 2 / 7, 4 / 7)


def test_time_decay_same_timestamps_share_equally() -> None:
    inp = AttributionInput(touches=(touch(5), touch(5)), conversion_ts=10**12)
    assert time_decay(inp, PARAMS) == exactly(0.5, 0.5)


def test_time_decay_ancient_journey_does_not_underflow() -> None:
    """2^-(10^4) is 0.0 in floats: the shares must still be defined."""
    inp = AttributionInput(touches=(touch(0), touch(5_000)), conversion_ts=10_000)
    assert time_decay(inp, ModelParams(half_life_ms=1)) == (0.0, 1.0)


# --- W-shaped ----------------------------------------------------------------


def test_w_shaped_without_lead() -> None:
    """t1 and t4 0.3 each, t2 and t3 0.05 each; total 0.7 -> 3/7, 1/14, 1/14, 3/7."""
    assert w_shaped(n_touches(4), PARAMS) == exactly(3 / 7, 1 / 14, 1 / 14, 3 / 7)


def test_w_shaped_lead_before_every_touch_is_no_position() -> None:
    inp = n_touches(4, lead_ts=at(1) - 1)
    assert w_shaped(inp, PARAMS) == exactly(3 / 7, 1 / 14, 1 / 14, 3 / 7)


def test_w_shaped_lead_at_first_touch() -> None:
    """t1 0.3 + 0.3, t4 0.3, t2 and t3 0.05 each: total 1."""
    inp = n_touches(4, lead_ts=at(1))
    assert w_shaped(inp, PARAMS) == exactly(0.6, 0.05, 0.05, 0.3)


def test_w_shaped_lead_in_the_middle() -> None:
    """The lead falls between t3 and t4, so t3 is the lead touch; t2 and t4 share 0.1."""
    inp = n_touches(5, lead_ts=at(3) + 1)
    assert w_shaped(inp, PARAMS) == exactly(0.3, 0.05, 0.3, 0.05, 0.3)


def test_w_shaped_lead_coinciding_with_last_touch() -> None:
    """The current conversion is the lead: tn gets 0.3 + 0.3."""
    inp = n_touches(4, lead_ts=at(4))
    assert w_shaped(inp, PARAMS) == exactly(0.3, 0.05, 0.05, 0.6)


def test_w_shaped_without_others_does_not_give_their_tenth() -> None:
    inp = n_touches(3, lead_ts=at(2))
    assert w_shaped(inp, PARAMS) == exactly(1 / 3, 1 / 3, 1 / 3)


def test_w_shaped_two_touches() -> None:
    assert w_shaped(n_touches(2), PARAMS) == exactly(0.5, 0.5)
    # lead at t1: 0.6 and 0.3
    assert w_shaped(n_touches(2, lead_ts=at(1)), PARAMS) == exactly(2 / 3, 1 / 3)


# --- full path ---------------------------------------------------------------


def test_full_path_with_lead_and_opportunity() -> None:
    """t1, t2 (lead), t4 (opportunity), t6 at 0.225; t3 and t5 share 0.1: total 1."""
    inp = n_touches(6, lead_ts=at(2), opportunity_ts=at(4) + 1)
    assert full_path(inp, PARAMS) == exactly(0.225, 0.225, 0.05, 0.225, 0.05, 0.225)


def test_full_path_lead_and_opportunity_on_the_same_touch() -> None:
    inp = n_touches(5, lead_ts=at(3), opportunity_ts=at(3))
    assert full_path(inp, PARAMS) == exactly(0.225, 0.05, 0.45, 0.05, 0.225)


def test_full_path_lead_without_opportunity() -> None:
    """Three positions 0.225 and t3 0.1: total 0.775 -> 9/31, 9/31, 4/31, 9/31."""
    inp = n_touches(4, lead_ts=at(2))
    assert full_path(inp, PARAMS) == exactly(9 / 31, 9 / 31, 4 / 31, 9 / 31)


def test_full_path_every_touch_a_position() -> None:
    inp = n_touches(4, lead_ts=at(2), opportunity_ts=at(3))
    assert full_path(inp, PARAMS) == exactly(0.25, 0.25, 0.25, 0.25)
