"""The model registry, `attribute` and the properties every model keeps
(docs/architecture.md, "Attribution models")."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.attribution import DATA_DRIVEN, HEURISTIC, MODELS, Model, attribute
from stream.attribution.heuristic import linear
from stream.attribution.paths import PathCount
from stream.attribution.snapshot import MODEL_NAMES, build, from_published
from stream.core.config import ModelParams
from stream.core.records import AttributionInput, Touchpoint
from stream.errors import TouchstreamError, UnknownModelError
from tests.support.attribution import PARAMS, exactly, journey
from tests.support.strategies import path_stats

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
