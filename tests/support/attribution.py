"""Builders of attribution inputs for the model tests: touch tk (1-based) is at ts k*STEP,
so `lead_ts=at(3)` means "the lead happened at t3"."""

from __future__ import annotations

import pytest

from stream.attribution import MODELS, Shares
from stream.core.config import ModelParams
from stream.core.records import AttributionInput, Touchpoint


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
