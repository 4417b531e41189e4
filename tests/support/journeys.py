"""Builders of the journey state-machine tests (tests/unit/test_journey_*.py).

Every interaction is built with `click(minutes, ...)`: its ts is T0 + that many minutes,
and its event id (hence a session id) is `i<minutes>` unless given; every event is person
p-1's. `fold` applies events in order; `sessions` checks that the incremental `apply` and
the whole-list `sessionise` agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream.core.apply import apply
from stream.core.config import Rules
from stream.core.journey import Converted, Journey, Output, sessionise
from stream.core.records import AttributionInput, Event, Touchpoint
from tests.support.events import MIN, T0

TIMEOUT = 30 * MIN
RULES = Rules()  # 30 min timeout, 90 d lookback, cap 200
LOOKBACK = RULES.lookback_ms
EMPTY = Journey()


def ts(minutes: float) -> int:
    return T0 + int(minutes * MIN)


def click(
    minutes: float,
    channel: str = "email",
    *,
    at: int | None = None,
    event_id: str | None = None,
    cost: float = 0.0,
    **fields: Any,
) -> Event:
    """An interaction `minutes` after T0 (or exactly at `at`)."""
    when = ts(minutes) if at is None else at
    return Event(
        event_id or f"i{minutes}",
        "interaction",
        when,
        "p-1",
        anonymous_id="p-1",
        channel=channel,
        cost=cost,
        **fields,
    )


def convert(minutes: float, conversion: str = "purchase", *, at: int | None = None) -> Event:
    when = ts(minutes) if at is None else at
    return Event(
        f"c{minutes}",
        "conversion",
        when,
        "p-1",
        conversion=conversion,
        conversion_id=f"c{minutes}",
        value=100.0,
    )


def control(kind: str, when: int) -> Event:
    """A sweeper's request (`close_idle`, `expire`) for p-1, stamped `when`."""
    return Event(f"{kind}@{when}", kind, when, "p-1")  # type: ignore[arg-type]


def fold(
    events: Iterable[Event], rules: Rules = RULES, journey: Journey = EMPTY
) -> tuple[Journey, list[Output]]:
    """Apply `events` in order; the final journey and every output."""
    outputs: list[Output] = []
    for event in events:
        journey, out = apply(journey, event, rules)
        outputs += out
    return journey, outputs


def sessions(events: list[Event], rules: Rules = RULES) -> list[Touchpoint]:
    """The touches by both implementations, checked to agree."""
    touches = sessionise(events, rules.session_timeout_ms)
    assert list(fold(events, rules)[0].touches) == touches
    return touches


def ids(touches: Iterable[Touchpoint]) -> list[str]:
    return [t.session_id for t in touches]


def converted(outputs: list[Output]) -> list[AttributionInput]:
    return [o.attribution_input for o in outputs if isinstance(o, Converted)]
