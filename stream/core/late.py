"""Events out of order and journeys merged: re-deriving the sessions a late event changes.

Pure. A journey keeps the raw interactions of its sessions inside the re-derive window
(`Journey.tail`, at most `journey_cap` of them) and every conversion inside the lookback
(`Journey.pending`). `insert_late` puts a late interaction at its place — it may join,
split or bridge sessions — and `merge` interleaves an anonymous journey with a
customer's (identity stitching); both re-derive the sessions from the raw interactions,
so any arrival order ends with the touchpoints of the time-sorted interactions.
`recredit` then gives every conversion whose credit changed its next revision.

A late interaction older than the re-derive window (its neighbours' raw interactions
are gone) cannot be placed exactly: it becomes a touchpoint of its own (`Approximated`).
"""

from __future__ import annotations

from msgspec.structs import replace

from stream.core.config import Rules
from stream.core.journey import (
    Approximated,
    Corrected,
    Journey,
    Output,
    Pending,
    attribution_input,
    credited,
    groups,
    order,
    session_touch,
    settled,
    touch_from,
    trim,
)
from stream.core.records import Event, Touchpoint


def insert_late(journey: Journey, event: Event, rules: Rules) -> tuple[Journey, list[Output]]:
    """Insert an interaction that is not the newest at its place."""
    touch = touch_from(event)
    until = journey.settled_until
    if until and event.ts <= until:
        # among sessions whose raw interactions are gone: a touchpoint of its own
        old = settled(journey)
        touches = (*sorted((*old, touch), key=order), *journey.touches[len(old) :])
        updated = replace(journey, touches=trim(touches, journey.last_ts, rules))
        return settle(updated, rules), [Approximated(event)]
    updated = settle(_rederived(journey, (*journey.tail, touch), rules), rules)
    if until and event.ts <= until + rules.session_timeout_ms:
        return updated, [Approximated(event)]  # it may have belonged to the newest settled session
    return updated, []


def _rederived(journey: Journey, raw: tuple[Touchpoint, ...], rules: Rules) -> Journey:
    """The journey with its unsettled sessions derived again from `raw` (any order)."""
    tail = tuple(sorted(raw, key=order))
    sessions = groups(tail, rules.session_timeout_ms)
    derived = tuple(session_touch(group) for group in sessions)
    return replace(
        journey,
        touches=trim((*settled(journey), *derived), journey.last_ts, rules),
        session_last_ts=sessions[-1][-1].ts,
        session_interactions=len(sessions[-1]),
        tail=tail,
        tail_touches=len(sessions),
    )


def merge(target: Journey, source: Journey, source_id: str, rules: Rules) -> tuple[Journey, list[Output]]:
    """Merge an anonymous journey into a customer's, in time order (identity stitching).

    Both journeys' raw interactions are re-derived together; settled touches are
    interleaved by time. The customer's conversions are re-credited (a correction where the
    anonymous touches fall in their windows). Merging the same anonymous id twice changes
    nothing, and an interaction both journeys hold counts once.
    """
    ids = tuple(sorted({*target.merged, *source.merged, source_id}))
    if source_id in target.merged or not (source.touches or source.tail):
        return replace(target, merged=ids), []
    until = max(target.settled_until, source.settled_until)
    sessions = groups(_distinct((*target.tail, *source.tail)), rules.session_timeout_ms)
    # a raw session that starts before a settled one ended is settled as well
    kept = [s for s in sessions if s[0].ts > until]
    let_go = [session_touch(s) for s in sessions if s[0].ts <= until]
    until = max([until, *(s[-1].ts for s in sessions if s[0].ts <= until)])
    old = _distinct((*settled(target), *settled(source), *let_go))
    newest = max((target, source), key=lambda j: j.session_last_ts)
    last_ts = max(target.last_ts, source.last_ts)
    merged = replace(
        target,
        touches=trim((*old, *(session_touch(s) for s in kept)), last_ts, rules),
        tail=tuple(t for s in kept for t in s),
        tail_touches=len(kept),
        settled_until=until,
        session_last_ts=newest.session_last_ts,
        session_interactions=len(kept[-1]) if kept else newest.session_interactions,
        session_open=newest.session_open,
        lead_ts=_earliest(target.lead_ts, source.lead_ts),
        opportunity_ts=_earliest(target.opportunity_ts, source.opportunity_ts),
        conversions=target.conversions + source.conversions,
        last_ts=last_ts,
        last_conversion_ts=max(
            (t for t in (target.last_conversion_ts, source.last_conversion_ts) if t), default=None
        ),
        merged=ids,
    )
    merged, corrections = recredit(settle(merged, rules), rules)
    return merged, corrections


def _distinct(touches: tuple[Touchpoint, ...] | list[Touchpoint]) -> list[Touchpoint]:
    """Touches in time order, each session (or raw interaction) once: by its `session_id`."""
    return sorted({t.session_id: t for t in touches}.values(), key=order)


def _earliest(a: int | None, b: int | None) -> int | None:
    return min((t for t in (a, b) if t is not None), default=None)


def recredit(journey: Journey, rules: Rules) -> tuple[Journey, list[Output]]:
    """Credit every emitted conversion again; a `Corrected` for each whose credit changed."""
    outputs: list[Output] = []
    pending = []
    for p in journey.pending:
        inp = attribution_input(journey, p.event, rules)
        now = credited(inp)
        if now != p.credited:
            outputs.append(Corrected(p.event, inp, p.revision + 1, p.channels))
            p = Pending(p.event, p.revision + 1, now, tuple(t.channel for t in inp.touches))
        pending.append(p)
    return replace(journey, pending=tuple(pending)), outputs


def settle(journey: Journey, rules: Rules) -> Journey:
    """Let go of what no late event can change exactly any more: the raw interactions of
    the oldest sessions beyond the re-derive window or the raw cap (`journey_cap`), and
    the conversions older than the lookback. Keeps `tail` covering the last
    `tail_touches` touches (trimming may have dropped the oldest)."""
    sessions = groups(journey.tail, rules.session_timeout_ms)
    keep = sessions[len(sessions) - min(len(sessions), len(journey.touches)) :]
    horizon = journey.last_ts - rules.rederive_ms
    start = 0
    raw = sum(len(s) for s in keep)
    while start < len(keep) and (keep[start][-1].ts < horizon or raw > rules.journey_cap):
        raw -= len(keep[start])
        start += 1
    let_go, keep = keep[:start], keep[start:]
    oldest = journey.last_ts - rules.longest
    return replace(
        journey,
        tail=tuple(t for s in keep for t in s) if let_go or len(keep) != len(sessions) else journey.tail,
        tail_touches=len(keep),
        settled_until=max([journey.settled_until, *(s[-1].ts for s in let_go)]),
        pending=tuple(p for p in journey.pending if p.event.ts >= oldest),
    )
