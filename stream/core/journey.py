"""A person's journey: the state the core keeps per person, and the sessionisation rule.

Plain frozen data and pure helpers. `stream.core.apply` moves a journey forward one
event at a time, `stream.core.late` inserts late events and merges journeys; both build
sessions with `groups` here, and `sessionise` is the rule written as a plain function
over a whole list of interactions (tests prove the incremental path agrees).

Order: interactions are ordered by (ts, event id), so that equal timestamps sort the same
whatever the order they arrived in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from msgspec import Struct
from msgspec.structs import replace

from stream.core.config import Rules
from stream.core.records import AttributionInput, Event, Touchpoint

TOUCH_FIELDS = Touchpoint.__struct_fields__


class Journey(Struct, frozen=True):
    """A person's touchpoints in time order; the last one is the current session.

    `session_last_ts` / `session_interactions` describe the current session;
    `session_open` is False once that session has been closed and emitted.
    """

    touches: tuple[Touchpoint, ...] = ()
    session_last_ts: int = 0
    session_interactions: int = 0
    session_open: bool = False
    lead_ts: int | None = None  # the person's first `lead` conversion
    opportunity_ts: int | None = None  # the person's first `opportunity` conversion
    conversions: int = 0
    last_ts: int = 0  # the latest event (interaction or conversion)
    last_conversion_ts: int | None = None
    # Re-deriving sessions for late events: the raw interactions (as touchpoints of one
    # interaction, `session_id` = event id) of the last `tail_touches` touches — the sessions
    # inside the re-derive window — sorted by (ts, event id). `settled_until` is the last
    # interaction ts of the newest session whose raw interactions were let go (0: none).
    tail: tuple[Touchpoint, ...] = ()
    tail_touches: int = 0
    settled_until: int = 0
    # Every conversion inside the lookback, with what it was last credited on: a late event
    # that changes its credit re-emits it as the next revision.
    pending: tuple[Pending, ...] = ()
    # Identity stitching: the anonymous ids merged into this journey, and for an anonymous
    # journey that was merged, the customer it went to (its events are forwarded there).
    merged: tuple[str, ...] = ()
    merged_into: str | None = None


class Pending(Struct, frozen=True):
    """An emitted conversion (`conversion_event`: what its attribution needs of it): its
    last revision, a digest of what that revision credited (`credited`), and the path its
    path count is under (`channels`)."""

    event: Event
    revision: int
    credited: str
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """A session that ended: the next one started, or it sat idle past the timeout."""

    touch: Touchpoint
    end_ts: int
    interactions: int
    closed_by: str  # "next_session" | "idle" | "expired"


@dataclass(frozen=True, slots=True)
class Converted:
    """A conversion and the journey slice its attribution is computed on."""

    event: Event
    attribution_input: AttributionInput


@dataclass(frozen=True, slots=True)
class NullPath:
    """A journey that expired (no event for the lookback window) with touches that
    never led to a conversion: the data-driven models learn it as a null path."""

    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Corrected:
    """A late event changed what an emitted conversion is credited on: re-emit it as
    `revision`; `previous_channels` is the path it was counted under before."""

    event: Event
    attribution_input: AttributionInput
    revision: int
    previous_channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TooLate:
    """An event older than the lookback behind the person's last event: rejected."""

    event: Event
    late_by_ms: int


@dataclass(frozen=True, slots=True)
class Approximated:
    """A late interaction older than the re-derive window: it became a touchpoint of its
    own instead of joining or splitting the session it fell into (counted by the shell)."""

    event: Event


Output = SessionClosed | Converted | NullPath | Corrected | TooLate | Approximated


def conversion_event(
    event_id: str,
    ts: int,
    conversion: str | None,
    conversion_id: str | None,
    value: float,
    currency: str | None,
) -> Event:
    """A conversion as a journey keeps it: only what its attribution depends on."""
    return Event(
        event_id,
        "conversion",
        ts,
        "",
        conversion=conversion,
        conversion_id=conversion_id,
        value=value,
        currency=currency,
    )


def kept_conversion(event: Event) -> Event:
    return conversion_event(
        event.event_id, event.ts, event.conversion, event.conversion_id, event.value, event.currency
    )


def touch_key(item: Event | Touchpoint) -> tuple[str | None, ...]:
    return (item.channel, item.source, item.medium, item.campaign)


def order(item: Touchpoint) -> tuple[int, str]:
    """How raw interactions (and touchpoints) sort: by ts, then by event (session) id."""
    return (item.ts, item.session_id)


_COPIED = tuple(name for name in TOUCH_FIELDS if name != "session_id")


def touch_from(event: Event) -> Touchpoint:
    """A new session's touchpoint: the fields of its first interaction."""
    return Touchpoint(session_id=event.event_id, **{name: getattr(event, name) for name in _COPIED})


def groups(interactions: Sequence[Touchpoint], timeout_ms: int) -> list[list[Touchpoint]]:
    """Interactions (in time order) grouped into sessions by the sessionisation rule."""
    sessions: list[list[Touchpoint]] = []
    for item in interactions:
        last = sessions[-1][-1] if sessions else None
        if (
            last is not None
            and item.ts - last.ts <= timeout_ms
            and touch_key(item) == touch_key(sessions[-1][0])
        ):
            sessions[-1].append(item)
        else:
            sessions.append([item])
    return sessions


def session_touch(group: list[Touchpoint]) -> Touchpoint:
    """A session's touchpoint: its first interaction's fields, the summed cost."""
    return replace(group[0], cost=sum(t.cost for t in group))


def sessionise(interactions: Iterable[Event], session_timeout_ms: int) -> list[Touchpoint]:
    """The sessionisation rule over a whole list of one person's interactions.

    Sorted by (ts, event id); a new session starts after a gap over the timeout or on a
    new touch key.
    """
    ordered = sorted((touch_from(e) for e in interactions), key=order)
    return [session_touch(group) for group in groups(ordered, session_timeout_ms)]


def settled(journey: Journey) -> tuple[Touchpoint, ...]:
    """The touches whose raw interactions are no longer kept."""
    return journey.touches[: len(journey.touches) - journey.tail_touches]


def trim(touches: tuple[Touchpoint, ...], last_ts: int, rules: Rules) -> tuple[Touchpoint, ...]:
    """The touches inside the longest lookback before `last_ts`, the newest `journey_cap`."""
    oldest = last_ts - rules.longest
    if touches and touches[0].ts < oldest:
        touches = tuple(t for t in touches if t.ts >= oldest)
    return touches[-rules.journey_cap :] if len(touches) > rules.journey_cap else touches


def attribution_input(journey: Journey, event: Event, rules: Rules) -> AttributionInput:
    """What conversion `event` is credited on: the touches at or before it inside its
    type's lookback, and the person's first lead / opportunity if they were at or before it."""
    window_start = event.ts - rules.window(event.conversion)
    touches = tuple(t for t in journey.touches if window_start <= t.ts <= event.ts)
    lead, opportunity = journey.lead_ts, journey.opportunity_ts
    return AttributionInput(
        touches,
        event.ts,
        lead if lead is not None and lead <= event.ts else None,
        opportunity if opportunity is not None and opportunity <= event.ts else None,
    )


def credited(inp: AttributionInput) -> str:
    """A digest of everything a conversion's shares depend on: each touch's session, ts
    and cost, and the lead / opportunity positions."""
    text = "\n".join(f"{t.session_id}|{t.ts}|{t.cost}" for t in inp.touches)
    text += f"\n{inp.lead_ts}|{inp.opportunity_ts}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def closed_session(journey: Journey, closed_by: str) -> SessionClosed:
    return SessionClosed(
        journey.touches[-1], journey.session_last_ts, journey.session_interactions, closed_by
    )
