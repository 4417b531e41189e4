"""A person's journey as a pure state machine (DESIGN.md §1).

`apply(journey, event, rules)` returns the new journey and what to emit —
closed sessions and conversions ready for attribution. The stream worker and
the batch mode (`touchstream attribute --events`) both call it, so the
sessionisation rule exists once. `sessionise` is the rule written as a plain
function over a whole list of interactions; tests prove the incremental
`apply` agrees with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from stream.records import AttributionInput, Event, Touchpoint

TOUCH_FIELDS = tuple(f.name for f in dataclasses.fields(Touchpoint))
# The sweeper expires a journey only once its partition's event-time watermark is this far
# past the lookback, so that an event a little behind the watermark still finds its journey
# (as it does when the journey expires inline, on the person's own next event).
EXPIRY_SLACK_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Rules:
    """Sessionisation and lookback. `lookback_ms` applies to conversion types without an
    entry in `lookback_by_type`; journeys are kept (and expire) by the longest of them."""

    session_timeout_ms: int = 30 * 60 * 1000
    lookback_ms: int = 90 * 24 * 3600 * 1000
    journey_cap: int = 200
    lookback_by_type: tuple[tuple[str, int], ...] = ()
    grace_ms: int = 10 * 60 * 1000  # how late (behind the person's last event) an event may be

    def window(self, conversion: str | None) -> int:
        """The lookback of a conversion type."""
        return dict(self.lookback_by_type).get(conversion or "", self.lookback_ms)

    @property
    def longest(self) -> int:
        return max([self.lookback_ms, *(ms for _, ms in self.lookback_by_type)])


@dataclass(frozen=True, slots=True)
class Journey:
    """Touchpoints in time order; the last one is the current session.

    `session_last_ts` / `session_interactions` describe the current session;
    `session_open` is False once that session has been closed and emitted.
    """

    touches: tuple[Touchpoint, ...] = ()
    session_last_ts: int = 0
    session_interactions: int = 0
    session_open: bool = False
    lead_ts: int | None = None
    opportunity_ts: int | None = None
    conversions: int = 0
    last_ts: int = 0
    last_conversion_ts: int | None = None
    # Late arrivals (within `Rules.grace_ms`): the raw interactions of the sessions a late
    # interaction could still change (the last `tail_touches` touches), and the conversions
    # whose credits it could still change.
    tail: tuple[Touchpoint, ...] = ()
    tail_touches: int = 0
    pending: tuple[Pending, ...] = ()
    # Identity stitching: the anonymous ids merged into this journey, and for an anonymous
    # journey that was merged, the customer it went to (its events are forwarded there).
    merged: tuple[str, ...] = ()
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """A conversion inside the grace period, with what it was last credited on."""

    event: Event
    revision: int
    credited: tuple[str, ...]  # "session_id|ts|cost" of each credited touch
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
    """A late touch changed what an emitted conversion is credited on: re-emit it as
    `revision`; `previous_channels` is the path it was counted under before."""

    event: Event
    attribution_input: AttributionInput
    revision: int
    previous_channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TooLate:
    """An event more than the grace period behind the person's last event: rejected."""

    event: Event
    late_by_ms: int


Output = SessionClosed | Converted | NullPath | Corrected | TooLate


def touch_key(item: Event | Touchpoint) -> tuple[str | None, ...]:
    return (item.channel, item.source, item.medium, item.campaign)


def apply(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
    """Apply one event (in arrival order) to a journey.

    A journey with no event for the lookback window expires before anything else is
    applied: the same rule whether the person comes back (here) or never does (the
    sweeper's `expire` event, stamped with the partition's event-time watermark).
    """
    if event.type == "close_idle":
        journey, closed = close_idle(journey, event.ts, rules)
        return journey, [closed] if closed else []
    journey, outputs = expire(journey, event.ts, rules)
    if event.type in ("interaction", "conversion") and event.ts < journey.last_ts:
        late_by = journey.last_ts - event.ts
        if late_by > rules.grace_ms:
            return journey, [*outputs, TooLate(event, late_by)]
        if event.type == "interaction":
            journey, more = _late_interaction(journey, event, rules)
            return journey, outputs + more
    if event.type == "interaction":
        journey, more = _interaction(journey, event, rules)
    elif event.type == "conversion":
        journey, more = _conversion(journey, event, rules)
    else:
        more = []  # expire (done above) / identify / revenue: handled by later stages
    return journey, outputs + more


def _interaction(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
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
        extended = dataclasses.replace(current, cost=current.cost + event.cost)
        touches = journey.touches[:-1] + (extended,)
        interactions = journey.session_interactions + 1
        if tail_touches:  # the current session is unsettled: keep its interactions
            tail += (touch_from(event),)
    else:
        if current is not None and journey.session_open:
            outputs.append(_closed(journey, "next_session"))
        touches = journey.touches + (touch_from(event),)
        interactions = 1
        tail, tail_touches = tail + (touch_from(event),), tail_touches + 1
    last_ts = max(journey.last_ts, event.ts)
    updated = dataclasses.replace(
        journey,
        touches=_trim(touches, last_ts, rules),
        session_last_ts=max(event.ts, journey.session_last_ts) if same_session else event.ts,
        session_interactions=interactions,
        session_open=True,
        last_ts=last_ts,
        tail=tail,
        tail_touches=tail_touches,
    )
    return _settle(updated, rules), outputs


def _late_interaction(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
    """Insert a late interaction at its place: re-derive the unsettled sessions (two may
    merge), then re-credit the pending conversions whose touches changed."""
    tail = sorted((*journey.tail, touch_from(event)), key=lambda t: t.ts)
    groups = _groups(tail, rules.session_timeout_ms)
    derived = tuple(_session_touch(group) for group in groups)
    touches = tuple(sorted(_settled(journey) + derived, key=lambda t: t.ts))  # stable: settled first
    updated = dataclasses.replace(
        journey,
        touches=_trim(touches, journey.last_ts, rules),
        session_last_ts=groups[-1][-1].ts,
        session_interactions=len(groups[-1]),
        tail=tuple(tail),
        tail_touches=len(groups),
    )
    updated, corrections = _recredit(updated, rules)
    return _settle(updated, rules), corrections


def merge(target: Journey, source: Journey, source_id: str, rules: Rules) -> tuple[Journey, list[Output]]:
    """Merge an anonymous journey into a customer's, in time order (identity stitching).

    Both tails are re-derived together; settled touches are interleaved by time. The
    customer's pending conversions are re-credited (a correction where the anonymous
    touches fall in their windows). Merging the same anonymous id twice changes nothing.
    """
    if source_id in target.merged or not (source.touches or source.tail):
        return dataclasses.replace(target, merged=tuple(sorted({*target.merged, source_id}))), []
    tail = sorted((*target.tail, *source.tail), key=lambda t: t.ts)
    groups = _groups(tail, rules.session_timeout_ms)
    settled = [*_settled(target), *_settled(source)]
    touches = tuple(sorted([*settled, *(_session_touch(g) for g in groups)], key=lambda t: t.ts))
    in_order = not settled or not groups or max(t.ts for t in settled) <= groups[0][0].ts
    current = max((target, source), key=lambda j: j.session_last_ts)
    merged = dataclasses.replace(
        target,
        touches=_trim(touches, max(target.last_ts, source.last_ts), rules),
        tail=tuple(tail) if in_order else (),
        tail_touches=len(groups) if in_order else 0,
        session_last_ts=current.session_last_ts,
        session_interactions=current.session_interactions,
        session_open=current.session_open,
        lead_ts=min((t for t in (target.lead_ts, source.lead_ts) if t is not None), default=None),
        opportunity_ts=min(
            (t for t in (target.opportunity_ts, source.opportunity_ts) if t is not None), default=None
        ),
        conversions=target.conversions + source.conversions,
        last_ts=max(target.last_ts, source.last_ts),
        last_conversion_ts=max(
            (t for t in (target.last_conversion_ts, source.last_conversion_ts) if t), default=None
        ),
        merged=tuple(sorted({*target.merged, *source.merged, source_id})),
    )
    merged, corrections = _recredit(merged, rules)
    return _settle(merged, rules), corrections


def _settled(journey: Journey) -> tuple[Touchpoint, ...]:
    return journey.touches[: len(journey.touches) - journey.tail_touches]


def _recredit(journey: Journey, rules: Rules) -> tuple[Journey, list[Output]]:
    outputs: list[Output] = []
    pending = []
    for p in journey.pending:
        inp = _input(journey, p.event, rules)
        credited = _credited(inp)
        if credited != p.credited:
            outputs.append(Corrected(p.event, inp, p.revision + 1, p.channels))
            p = Pending(p.event, p.revision + 1, credited, tuple(t.channel for t in inp.touches))
        pending.append(p)
    return dataclasses.replace(journey, pending=tuple(pending)), outputs


def _settle(journey: Journey, rules: Rules) -> Journey:
    """Forget what no late event can change any more: sessions that ended before
    `last_ts - grace - timeout`, conversions before `last_ts - grace`."""
    horizon = journey.last_ts - rules.grace_ms
    groups = _groups(list(journey.tail), rules.session_timeout_ms)
    keep = [g for g in groups if g[-1].ts >= horizon - rules.session_timeout_ms]
    keep = keep[len(keep) - min(len(keep), len(journey.touches)) :]  # never more than the touches
    return dataclasses.replace(
        journey,
        tail=tuple(t for g in keep for t in g),
        tail_touches=len(keep),
        pending=tuple(p for p in journey.pending if p.event.ts >= horizon),
    )


def _groups(interactions: list[Touchpoint], timeout_ms: int) -> list[list[Touchpoint]]:
    """Interactions (in time order) grouped into sessions by the sessionisation rule."""
    groups: list[list[Touchpoint]] = []
    for item in interactions:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and item.ts - last.ts <= timeout_ms
            and touch_key(item) == touch_key(groups[-1][0])
        ):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _session_touch(group: list[Touchpoint]) -> Touchpoint:
    return dataclasses.replace(group[0], cost=sum(t.cost for t in group))


def _input(journey: Journey, event: Event, rules: Rules) -> AttributionInput:
    window_start = event.ts - rules.window(event.conversion)
    touches = tuple(t for t in journey.touches if window_start <= t.ts <= event.ts)
    return AttributionInput(touches, event.ts, journey.lead_ts, journey.opportunity_ts)


def _credited(inp: AttributionInput) -> tuple[str, ...]:
    return tuple(f"{t.session_id}|{t.ts}|{t.cost}" for t in inp.touches)


def _conversion(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
    journey = dataclasses.replace(
        journey,
        lead_ts=_first(journey.lead_ts, event, "lead"),
        opportunity_ts=_first(journey.opportunity_ts, event, "opportunity"),
    )
    inp = _input(journey, event, rules)
    last_ts = max(journey.last_ts, event.ts)
    pending = Pending(event, 0, _credited(inp), tuple(t.channel for t in inp.touches))
    updated = dataclasses.replace(
        journey,
        touches=_trim(journey.touches, last_ts, rules),
        conversions=journey.conversions + 1,
        last_ts=last_ts,
        last_conversion_ts=max(event.ts, journey.last_conversion_ts or event.ts),
        pending=(*journey.pending, pending),
    )
    return _settle(updated, rules), [Converted(event, inp)]


def expire(journey: Journey, ts: int, rules: Rules) -> tuple[Journey, list[Output]]:
    """Forget a journey with no event for the lookback window before `ts`.

    Its open session closes (`closed_by` "expired"); the touches after its last
    conversion (all of them if it never converted) become a null path, once.
    """
    if not journey.last_ts or ts - journey.last_ts <= rules.longest:
        return journey, []
    outputs: list[Output] = [_closed(journey, "expired")] if journey.session_open else []
    after = journey.last_conversion_ts
    unconverted = tuple(t.channel for t in journey.touches if after is None or t.ts > after)
    if unconverted:
        outputs.append(NullPath(unconverted))
    return Journey(), outputs


def close_idle(journey: Journey, now_ms: int, rules: Rules) -> tuple[Journey, SessionClosed | None]:
    """Close the current session if no interaction came for `session_timeout_ms`."""
    if not journey.session_open or now_ms - journey.session_last_ts <= rules.session_timeout_ms:
        return journey, None
    return dataclasses.replace(journey, session_open=False), _closed(journey, "idle")


def _closed(journey: Journey, closed_by: str) -> SessionClosed:
    return SessionClosed(
        journey.touches[-1], journey.session_last_ts, journey.session_interactions, closed_by
    )


def _first(known: int | None, event: Event, conversion: str) -> int | None:
    if event.conversion != conversion:
        return known
    return event.ts if known is None else min(known, event.ts)


def _trim(touches: tuple[Touchpoint, ...], last_ts: int, rules: Rules) -> tuple[Touchpoint, ...]:
    oldest = last_ts - rules.longest
    if touches and touches[0].ts < oldest:
        touches = tuple(t for t in touches if t.ts >= oldest)
    return touches[-rules.journey_cap :] if len(touches) > rules.journey_cap else touches


_COPIED = tuple(name for name in TOUCH_FIELDS if name != "session_id")


def touch_from(event: Event) -> Touchpoint:
    """A new session's touchpoint: the fields of its first interaction."""
    return Touchpoint(session_id=event.event_id, **{name: getattr(event, name) for name in _COPIED})


def sessionise(interactions: Iterable[Event], session_timeout_ms: int) -> list[Touchpoint]:
    """The sessionisation rule over a whole list of one person's interactions.

    Sorted by event time (stable, so equal timestamps keep arrival order); a
    new session starts after a gap over the timeout or on a new touch key.
    """
    ordered = [touch_from(e) for e in sorted(interactions, key=lambda e: e.ts)]
    return [_session_touch(group) for group in _groups(ordered, session_timeout_ms)]


# -- compact storage form ---------------------------------------------------------

_JOURNEY_SCALARS = tuple(
    f.name for f in dataclasses.fields(Journey) if f.name not in ("touches", "tail", "pending", "merged")
)
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(Event))


def dumps(journey: Journey) -> bytes:
    """Compact JSON, positional throughout (it is stored once per person): the scalars in
    `_JOURNEY_SCALARS` order, then touches and tail as rows in TOUCH_FIELDS order, then the
    merged ids and the pending conversions (trailing empty parts left out)."""
    doc: list[Any] = [
        [getattr(journey, name) for name in _JOURNEY_SCALARS],
        [_row(t) for t in journey.touches],
        [_row(t) for t in journey.tail],
        journey.merged,
        [
            [[getattr(p.event, n) for n in _EVENT_FIELDS], p.revision, p.credited, p.channels]
            for p in journey.pending
        ],
    ]
    while not doc[-1]:
        doc.pop()
    return orjson.dumps(doc)


def _row(touch: Touchpoint) -> list[Any]:
    return [getattr(touch, name) for name in TOUCH_FIELDS]


def loads(data: bytes | None) -> Journey:
    if not data:
        return Journey()
    scalars, touches, tail, merged, pending = [*orjson.loads(data), [], [], [], []][:5]
    return Journey(
        **dict(zip(_JOURNEY_SCALARS, scalars, strict=True)),
        touches=tuple(Touchpoint(*row) for row in touches),
        tail=tuple(Touchpoint(*row) for row in tail),
        merged=tuple(merged),
        pending=tuple(
            Pending(Event(*event), revision, tuple(credited), tuple(channels))
            for event, revision, credited, channels in pending
        ),
    )
