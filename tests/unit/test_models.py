"""Heuristic attribution models (DESIGN.md §7) on hand-computed journeys.

Journeys are built with `journey(...)`: touch tk (1-based) is at ts k*STEP,
so `lead_ts=at(3)` means "the lead happened at t3".
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.attribution import DATA_DRIVEN, HEURISTIC, MODELS, Model, Shares, attribute
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
from stream.attribution.paths import PathCount
from stream.attribution.snapshot import MODEL_NAMES, build, from_published
from stream.core.config import ModelParams
from stream.core.records import AttributionInput, Touchpoint
from stream.errors import TouchstreamError, UnknownModelError
from tests.support.strategies import path_stats

# --- builders ----------------------------------------------------------------


def shares_of(name: str, inp: AttributionInput) -> Shares:
    """A heuristic model's shares, through the registry."""
    shares = MODELS[name].shares
    assert shares is not None
    return shares(inp, PARAMS)


STEP = 1_000
PARAMS = ModelParams()


def at(k: int) -> int:
    """Timestamp of touch tk (1-based)."""
    return k * STEP


def touch(ts: int, channel: str = "email") -> Touchpoint:
    return Touchpoint(ts=ts, channel=channel, session_id=f"s{ts}")


def journey(
    *channels: str,
    conversion_ts: int | None = None,
    lead_ts: int | None = None,
    opportunity_ts: int | None = None,
) -> AttributionInput:
    """Touches t1..tn at ts STEP, 2*STEP, ... through `channels`; converting at tn by default."""
    touches = tuple(touch(at(k), c) for k, c in enumerate(channels, start=1))
    return AttributionInput(
        touches=touches,
        conversion_ts=at(len(channels)) if conversion_ts is None else conversion_ts,
        lead_ts=lead_ts,
        opportunity_ts=opportunity_ts,
    )


def n_touches(n: int, **kwargs: int | None) -> AttributionInput:
    return journey(*["email"] * n, **kwargs)


def exactly(*shares: float) -> object:
    return pytest.approx(shares, rel=1e-12, abs=1e-15)


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


# --- registry ----------------------------------------------------------------


def test_registry_order_and_defaults() -> None:
    assert list(MODELS) == [
        "first_touch",
        "last_touch",
        "last_non_direct",
        "linear",
        "position_based",
        "time_decay",
        "j_shaped",
        "inverse_j",
        "w_shaped",
        "full_path",
        "markov",
        "shapley",
        "shapley_ordered",
    ]
    assert tuple(MODELS)[:10] == HEURISTIC
    assert DATA_DRIVEN == ("markov", "shapley", "shapley_ordered") == MODEL_NAMES
    assert all(MODELS[name].needs_snapshot for name in DATA_DRIVEN)
    assert all(MODELS[name].totals is not None and MODELS[name].shares is None for name in DATA_DRIVEN)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODELS["mine"] = Model("mine", linear)  # type: ignore[index]


def test_attribute_runs_the_named_models() -> None:
    inp = journey("email", "direct", "direct")
    assert attribute(inp, PARAMS, ["linear", "last_non_direct"]) == {
        "linear": exactly(1 / 3, 1 / 3, 1 / 3),
        "last_non_direct": (1.0, 0.0, 0.0),
    }
    assert list(attribute(inp, PARAMS)) == list(MODELS)
    # without a snapshot, the data-driven models credit linearly
    assert attribute(inp, PARAMS, ["markov"]) == {"markov": exactly(1 / 3, 1 / 3, 1 / 3)}


# A>B 2 conversions, B 1 conversion, A 1 null: the snapshot of the data-driven tests below.
SNAPSHOT = build(
    {("A", "B"): PathCount(conversions=2), ("B",): PathCount(conversions=1), ("A",): PathCount(nulls=1)}
)


def test_attribute_with_a_snapshot() -> None:
    """Journey B>A>A under SNAPSHOT.

    markov (order 1): start->A 3/4, start->B 1/4 (A 3 journeys, B 1), A->B 2/3, A->null 1/3,
    B->conv 1. P = 3/4·2/3 + 1/4 = 3/4; P\\A = 1/4, RE_A = 2/3; P\\B = 0, RE_B = 1.
    Weights B 1, A 2/3, A 2/3, Σ 7/3: 3/7, 2/7, 2/7.
    shapley: φ_A = 2/2 = 1, φ_B = 1 + 1 = 2; weights 2, 1, 1: 1/2, 1/4, 1/4.
    shapley_ordered: A>B 2 -> A@1 1, B@2 1; B 1 -> B@1 1; A null -> A@1 0: φ_A = (1,),
    φ_B = (1, 1). B>A>A: B@1 weighs 1, A@2 unknown (A only seen at 1): linear, 1/3 each.
    B>B: B@1 1, B@2 1: 1/2 each.
    """
    got = attribute(journey("B", "A", "A"), PARAMS, DATA_DRIVEN, SNAPSHOT)
    assert got["markov"] == pytest.approx((3 / 7, 2 / 7, 2 / 7), abs=1e-12)
    assert got["shapley"] == pytest.approx((0.5, 0.25, 0.25), abs=1e-12)
    assert got["shapley_ordered"] == pytest.approx((1 / 3,) * 3, abs=1e-12)
    ordered = attribute(journey("B", "B"), PARAMS, ["shapley_ordered"], SNAPSHOT)
    assert ordered["shapley_ordered"] == pytest.approx((0.5, 0.5), abs=1e-12)


def test_attribute_with_a_snapshot_missing_the_model() -> None:
    partial = from_published(SNAPSHOT.published()[:1])
    assert partial.models == ("markov",) and partial.missing(DATA_DRIVEN) == ("shapley", "shapley_ordered")
    assert attribute(journey("A"), PARAMS, ["markov", "linear"], partial)["markov"] == (1.0,)
    message = rf"^no 'shapley' value in the snapshot {SNAPSHOT.snapshot_id} \(it has: markov\)$"
    with pytest.raises(ValueError, match=message):
        attribute(journey("A"), PARAMS, ["shapley"], partial)


def test_attribute_unknown_model() -> None:
    with pytest.raises(UnknownModelError, match="unknown attribution model 'markof'") as err:
        attribute(journey("email"), PARAMS, ["linear", "markof"])
    assert isinstance(err.value, TouchstreamError)
    assert err.value.name == "markof"


# --- properties --------------------------------------------------------------

CHANNELS = ("direct", "email", "paid_search", "organic_search", "display", "referral")


@st.composite
def inputs(draw: st.DrawFn) -> AttributionInput:
    n = draw(st.integers(1, 30))
    stamps = sorted(draw(st.lists(st.integers(0, 10**11), min_size=n, max_size=n)))
    channels = draw(st.lists(st.sampled_from(CHANNELS), min_size=n, max_size=n))
    conversion_ts = stamps[-1] + draw(st.integers(0, 10**10))
    milestone = st.none() | st.integers(0, conversion_ts)
    return AttributionInput(
        touches=tuple(
            Touchpoint(ts, c, f"s{i}") for i, (ts, c) in enumerate(zip(stamps, channels, strict=True))
        ),
        conversion_ts=conversion_ts,
        lead_ts=draw(milestone),
        opportunity_ts=draw(milestone),
    )


params_strategy = st.builds(
    ModelParams,
    position_weights=st.tuples(*[st.floats(0.01, 10.0)] * 3),
    half_life_ms=st.integers(1, 10**11),
)


@given(inputs(), params_strategy)
def test_every_model_gives_nonnegative_shares_summing_to_one(
    inp: AttributionInput, params: ModelParams
) -> None:
    for name, shares in attribute(inp, params).items():
        assert len(shares) == len(inp.touches), name
        assert all(s >= 0 for s in shares), name
        assert math.fsum(shares) == pytest.approx(1.0, abs=1e-9), name


@given(inputs(), params_strategy, path_stats(CHANNELS[:4], 8))
def test_data_driven_shares_from_any_snapshot(inp: AttributionInput, params: ModelParams, stats) -> None:
    """Snapshots of random path counts (channels the journeys may have that the snapshot lacks)."""
    for name, shares in attribute(inp, params, DATA_DRIVEN, build(stats)).items():
        assert len(shares) == len(inp.touches), name
        assert all(s >= 0 for s in shares), name
        assert math.fsum(shares) == pytest.approx(1.0, abs=1e-9), name


@given(inputs(), params_strategy, st.floats(0.0, 1e9))
def test_credited_value_is_conserved(inp: AttributionInput, params: ModelParams, value: float) -> None:
    for name, shares in attribute(inp, params).items():
        credited = math.fsum(s * value for s in shares)
        assert credited == pytest.approx(value, rel=1e-9, abs=1e-9), name


@given(inputs(), params_strategy)
def test_models_are_deterministic(inp: AttributionInput, params: ModelParams) -> None:
    assert attribute(inp, params) == attribute(inp, params)


@given(st.text().filter(lambda name: name not in MODELS))
def test_unknown_model_name_raises(name: str) -> None:
    with pytest.raises(UnknownModelError):
        attribute(journey("email"), PARAMS, [name])
