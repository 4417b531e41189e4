"""Heuristic attribution models (docs/architecture.md).

Every model is a pure function `(AttributionInput, ModelParams) -> shares`:
one share per touch of `inp.touches`, in the same order, each >= 0 and
summing to 1 whenever there is at least one touch; `()` for no touches.
No I/O, no clocks, no randomness: the same input gives bit-identical shares.

Most models build one raw weight per touch and hand it to `_normalise`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from stream.core.config import ModelParams
from stream.core.records import AttributionInput, Touchpoint

DIRECT = "direct"

W_POSITION = 0.3
FULL_PATH_POSITION = 0.225
OTHERS = 0.1


# --- helpers ---------------------------------------------------------------


def _normalise(weights: Sequence[float]) -> tuple[float, ...]:
    """Scale `weights` so they sum to 1; `()` for no weights."""
    if not weights:
        return ()
    total = math.fsum(weights)
    if not total > 0:
        raise ValueError(f"attribution weights must have a positive sum, got {total}")
    return tuple(w / total for w in weights)


def _one_hot(n: int, index: int) -> tuple[float, ...]:
    """All the credit to touch `index` (negative indexes count from the end)."""
    return tuple(1.0 if i == index % n else 0.0 for i in range(n)) if n else ()


def _ends_and_middle(n: int, first: float, middle: float, last: float) -> tuple[float, ...]:
    """For n >= 3: `first` to t1, `last` to tn, `middle` split evenly between the rest."""
    return _normalise([first, *[middle / (n - 2)] * (n - 2), last])


def _last_at_or_before(touches: Sequence[Touchpoint], ts: int | None) -> int | None:
    """Index of the last touch at or before `ts`, or None if there is none (or no `ts`)."""
    if ts is None:
        return None
    return max((i for i, t in enumerate(touches) if t.ts <= ts), default=None)


def _shaped(
    inp: AttributionInput, milestones: Sequence[int | None], position_weight: float
) -> tuple[float, ...]:
    """W-shaped family: t1, tn and the touch of each milestone get `position_weight`.

    Coinciding positions add; a milestone with no touch at or before it gets
    nothing. Touches at no position share `OTHERS` evenly (not given when
    there are none). The result is normalised.
    """
    n = len(inp.touches)
    if n == 0:
        return ()
    milestone_positions = (_last_at_or_before(inp.touches, ts) for ts in milestones)
    positions = [0, *(p for p in milestone_positions if p is not None), n - 1]
    weights = [0.0] * n
    for p in positions:
        weights[p] += position_weight
    others = [i for i in range(n) if i not in positions]
    for i in others:
        weights[i] = OTHERS / len(others)
    return _normalise(weights)


# --- models ----------------------------------------------------------------


def first_touch(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """t1 gets 1."""
    return _one_hot(len(inp.touches), 0)


def last_touch(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """tn gets 1."""
    return _one_hot(len(inp.touches), -1)


def last_non_direct(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """The last touch whose channel is not `direct` gets 1; all direct -> tn."""
    non_direct = [i for i, t in enumerate(inp.touches) if t.channel != DIRECT]
    return _one_hot(len(inp.touches), non_direct[-1] if non_direct else -1)


def linear(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """Each touch 1/n (repeats of a channel count separately)."""
    return _normalise([1.0] * len(inp.touches))


def position_based(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """n <= 2: linear; n >= 3: `params.position_weights` (first, middles, last)."""
    n = len(inp.touches)
    if n <= 2:
        return linear(inp, params)
    return _ends_and_middle(n, *params.position_weights)


def _j(n: int, two: tuple[float, float], ends: tuple[float, float, float]) -> tuple[float, ...]:
    """J-shaped family: 1 for n=1, `two` for n=2, `ends` (first, middles, last) for n >= 3."""
    if n <= 1:
        return (1.0,) * n
    if n == 2:
        return two
    return _ends_and_middle(n, *ends)


def j_shaped(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """n >= 3: t1 0.2, middles share 0.2, tn 0.6; n=2: 0.25/0.75."""
    return _j(len(inp.touches), (0.25, 0.75), (0.2, 0.2, 0.6))


def inverse_j(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """n >= 3: t1 0.6, middles share 0.2, tn 0.2; n=2: 0.75/0.25."""
    return _j(len(inp.touches), (0.75, 0.25), (0.6, 0.2, 0.2))


def time_decay(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """Weight 2^(-Δt/H), Δt = conversion ts - touch ts, H = half-life; normalised.

    Δt is measured from the latest touch instead of the conversion: that
    multiplies every weight by the same 2^(gap/H), so the normalised shares
    are the same, but the latest touch's weight is 1 and the total can never
    underflow to 0 however old the journey or short the half-life.
    """
    if not inp.touches:
        return ()
    latest = max(t.ts for t in inp.touches)
    half_life = params.half_life_ms
    return _normalise([0.5 ** ((latest - t.ts) / half_life) for t in inp.touches])


def w_shaped(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """t1, the lead touch and tn 0.3 each; the others share 0.1; normalised."""
    return _shaped(inp, (inp.lead_ts,), W_POSITION)


def full_path(inp: AttributionInput, params: ModelParams) -> tuple[float, ...]:
    """t1, lead, opportunity and tn touches 0.225 each; the others share 0.1; normalised."""
    return _shaped(inp, (inp.lead_ts, inp.opportunity_ts), FULL_PATH_POSITION)
