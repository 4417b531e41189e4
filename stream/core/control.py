"""Control events: the sweeper's requests, applied by a person's journey like any event.

`close_idle` (stamped with the wall clock) asks a person's journey to close a session
idle past the timeout; `expire` (stamped with the low watermark) asks a journey idle past
the lookback to expire. Producers cannot send them (validation rejects the types); they
carry no producer data and do not advance a watermark.

**The low watermark.** A person's events reach it through several raw partitions (an
anonymous device's key, the customer's key), read at different paces. Each raw
partition's watermark is the highest event time ingested from it; the event time every
partition has reached is the lowest of them (`low_watermark`), and only a journey idle
for the lookback (plus `EXPIRY_SLACK_MS` for disorder inside a partition) before *that*
is expired (`expires_before`) — so that a partition read behind the others never sees
its persons' journeys expired under its late events. A partition without an event for
`idle_ms` of wall clock is idle and holds nobody back (Flink's `withIdleness`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from stream.core.config import EXPIRY_SLACK_MS, Rules
from stream.core.records import Event

CONTROL = ("close_idle", "expire")
ControlKind = Literal["close_idle", "expire"]


def control_event(kind: ControlKind, person_id: str, last_ts: int, ts: int) -> Event:
    """The request for `person_id`, whose journey state it targets was last touched at
    `last_ts` (the open session's last interaction for `close_idle`, the journey's last
    event for `expire`): the id names that state, so that a later journey of the person
    is never mistaken for a duplicate of an earlier request, and a repeated request for
    the same state is one."""
    return Event(event_id=f"{kind}:{person_id}:{last_ts}:{ts}", type=kind, ts=ts, person_id=person_id)


def low_watermark(marks: Mapping[int, tuple[int, int]], now_ms: int, idle_ms: int) -> int | None:
    """The event time every raw partition has reached: the lowest watermark among the
    partitions that had an event in the last `idle_ms` (all of them when every one is
    idle); `marks`: partition -> (watermark, wall-clock ms of its latest event)."""
    live = [ts for ts, at in marks.values() if now_ms - at <= idle_ms] or [ts for ts, _ in marks.values()]
    return min(live, default=None)


def expires_before(watermark: int, rules: Rules) -> int:
    """A journey whose last event is before this expires at `watermark`."""
    return watermark - rules.longest - EXPIRY_SLACK_MS
