"""Control events: the sweeper's requests, applied by a person's journey like any event.

`close_idle` (stamped with the wall clock) asks a person's journey to close a session
idle past the timeout; `expire` (stamped with the partition's event-time watermark) asks
a journey idle past the lookback to expire. Producers cannot send them (validation
rejects the types); they carry no producer data and do not advance a watermark.
"""

from __future__ import annotations

from typing import Literal

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
