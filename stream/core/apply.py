"""How one event moves a journey forward (the per-person state machine, pure).

`apply(journey, event, rules)` returns the new journey and what to emit — closed
sessions, conversions ready for attribution, null paths, corrections, rejections. The
stream worker and the batch mode (`touchstream attribute --events`) both call it, so
the sessionisation rule exists once.

Whatever order a person's events arrive in, the journey ends as the time-sorted events
would leave it: an interaction that is not the newest is put at its place (`late`),
and every emitted conversion whose credit a late event changes comes back as its next
revision. Only an event older than the lookback behind the person's last event (which
the journey no longer holds) is rejected as too late.
"""

from __future__ import annotations

from msgspec.structs import replace

from stream.core.config import EXPIRY_SLACK_MS, Rules
from stream.core.journey import (
    Converted,
    Journey,
    NullPath,
    Output,
    Pending,
    SessionClosed,
    TooLate,
    attribution_input,
    closed_session,
    credited,
    kept_conversion,
    order,
    touch_from,
    touch_key,
    trim,
)
from stream.core.late import insert_late, recredit, settle
from stream.core.records import Event


def apply(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
    """Apply one event (in arrival order) to a journey.

    A journey with no event for the lookback window expires before anything else is
    applied: the same rule whether the person comes back (here) or never does (the
    sweeper's `expire` event, stamped with the low watermark; it allows the watermark
    `EXPIRY_SLACK_MS` more, for events that reach their partition a little out of order —
    the sweeper asks by the same rule, but the person's latest event may have come since).
    """
    if event.type == "close_idle":
        journey, closed = close_idle(journey, event.ts, rules)
        return journey, [closed] if closed else []
    now = event.ts - EXPIRY_SLACK_MS if event.type == "expire" else event.ts
    journey, outputs = expire(journey, now, rules)
    if event.type not in ("interaction", "conversion"):
        return journey, outputs  # expire (done above) / identify / revenue: handled by later stages
    if journey.last_ts and event.ts < journey.last_ts - rules.longest:
        return journey, [*outputs, TooLate(event, journey.last_ts - event.ts)]
    before = journey.last_conversion_ts
    if event.type == "conversion":
        journey, more = _conversion(journey, event, rules)
    elif _newest(journey, event):
        journey, more = _interaction(journey, event, rules)
    else:
        journey, more = insert_late(journey, event, rules)
    if before is not None and event.ts <= before:  # an emitted conversion may credit it
        journey, corrections = recredit(journey, rules)
        more += corrections
    return journey, outputs + more


def _newest(journey: Journey, event: Event) -> bool:
    """Whether an interaction comes after every interaction the journey holds."""
    if not journey.touches:
        return True
    latest = journey.tail[-1] if journey.tail else journey.touches[-1]
    position = (event.ts, event.event_id)
    return position > order(latest) and event.ts >= journey.session_last_ts


def _interaction(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
    """The newest interaction: it extends the current session or starts the next one."""
    outputs: list[Output] = []
    current = journey.touches[-1] if journey.touches else None
    same_session = (
        current is not None
        and event.ts - journey.session_last_ts <= rules.session_timeout_ms
        and touch_key(event) == touch_key(current)
    )
    tail, tail_touches = journey.tail, journey.tail_touches
    if same_session:
        assert current is not None
        extended = replace(current, cost=current.cost + event.cost)
        touches = journey.touches[:-1] + (extended,)
        interactions = journey.session_interactions + 1
        if tail_touches:  # the current session's interactions are kept
            tail += (touch_from(event),)
    else:
        if current is not None and journey.session_open:
            outputs.append(closed_session(journey, "next_session"))
        touches = journey.touches + (touch_from(event),)
        interactions = 1
        tail, tail_touches = tail + (touch_from(event),), tail_touches + 1
    last_ts = max(journey.last_ts, event.ts)
    updated = replace(
        journey,
        touches=trim(touches, last_ts, rules),
        session_last_ts=event.ts,
        session_interactions=interactions,
        session_open=True,
        last_ts=last_ts,
        tail=tail,
        tail_touches=tail_touches,
    )
    return settle(updated, rules), outputs


def _conversion(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
    """A conversion, in order or late: credited on the touches at or before it."""
    journey = replace(
        journey,
        lead_ts=_first(journey.lead_ts, event, "lead"),
        opportunity_ts=_first(journey.opportunity_ts, event, "opportunity"),
    )
    inp = attribution_input(journey, event, rules)
    last_ts = max(journey.last_ts, event.ts)
    pending = Pending(kept_conversion(event), 0, credited(inp), tuple(t.channel for t in inp.touches))
    updated = replace(
        journey,
        touches=trim(journey.touches, last_ts, rules),
        conversions=journey.conversions + 1,
        last_ts=last_ts,
        last_conversion_ts=max(event.ts, journey.last_conversion_ts or event.ts),
        pending=tuple(sorted((*journey.pending, pending), key=lambda p: (p.event.ts, p.event.event_id))),
    )
    return settle(updated, rules), [Converted(event, inp)]


def expire(journey: Journey, ts: int, rules: Rules) -> tuple[Journey, list[Output]]:
    """Forget a journey with no event for the lookback window before `ts`.

    Its open session closes (`closed_by` "expired"); the touches after its last
    conversion (all of them if it never converted) become a null path, once.
    """
    if not journey.last_ts or ts - journey.last_ts <= rules.longest:
        return journey, []
    outputs: list[Output] = [closed_session(journey, "expired")] if journey.session_open else []
    after = journey.last_conversion_ts
    unconverted = tuple(t.channel for t in journey.touches if after is None or t.ts > after)
    if unconverted:
        outputs.append(NullPath(unconverted))
    return Journey(), outputs


def close_idle(journey: Journey, now_ms: int, rules: Rules) -> tuple[Journey, SessionClosed | None]:
    """Close the current session if no interaction came for `session_timeout_ms`."""
    if not journey.session_open or now_ms - journey.session_last_ts <= rules.session_timeout_ms:
        return journey, None
    return replace(journey, session_open=False), closed_session(journey, "idle")


def _first(known: int | None, event: Event, conversion: str) -> int | None:
    if event.conversion != conversion:
        return known
    return event.ts if known is None else min(known, event.ts)
