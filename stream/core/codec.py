"""Compact byte forms of the core's records: events on the person-keyed topic, journeys in Redis.

Pure. `encode_event` / `decode_event` carry a validated event re-keyed to the worker that
owns its person (and from a merged anonymous person to its customer); `encode_journey` /
`decode_journey` are the positional JSON a journey is stored as, inside the person state
(`stream.core.state_codec`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from msgspec.structs import replace

from stream.core.journey import TOUCH_FIELDS, Journey, Pending, conversion_event, session_touch, settled
from stream.core.records import Event, Touchpoint

_JOURNEY_SCALARS = tuple(
    name for name in Journey.__struct_fields__ if name not in ("touches", "tail", "pending", "merged")
)


def encode_event(event: Event) -> bytes:
    """Compact serialisation for the internal person-keyed topic."""
    return orjson.dumps({k: v for k in Event.__struct_fields__ if (v := getattr(event, k)) is not None})


_EVENT = msgspec.json.Decoder(Event)


def decode_event(data: bytes) -> Event:
    """Straight from JSON to the struct, types checked; ValueError when it is no event."""
    try:
        return _EVENT.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not an encoded event: {exc}") from exc


# what a non-first interaction of a session may have of its own (the touch key is the session's)
_OWN = ("interaction", "medium_kind", "directness", "stage", "context", "term", "content")
_CONVERSION = ("event_id", "ts", "conversion", "conversion_id", "value", "currency")


def encode_journey(journey: Journey) -> bytes:
    """Compact JSON, positional throughout (it is stored once per person): the scalars in
    `_JOURNEY_SCALARS` order; the settled touches as rows in TOUCH_FIELDS order; the raw
    interactions session by session — a full row for the first, then for each further one
    its ts (after the previous one), id, cost and the fields it does not share with the first
    (the unsettled touches are derived from them again when decoding); the merged ids; the
    pending conversions. Trailing empty parts are left out."""
    doc: list[Any] = [
        [getattr(journey, name) for name in _JOURNEY_SCALARS],
        [_row(t) for t in settled(journey)],
        [_session(run) for run in _sessions(journey)],
        journey.merged,
        [
            [*(getattr(p.event, n) for n in _CONVERSION), p.revision, p.credited, p.channels]
            for p in journey.pending
        ],
    ]
    while not doc[-1]:
        doc.pop()
    return orjson.dumps(doc)


def _sessions(journey: Journey) -> list[tuple[Touchpoint, ...]]:
    """The raw interactions of each unsettled touch: consecutive runs of the tail, each
    starting with its touch's first interaction (the session id is that interaction's id)."""
    starts = {t.session_id for t in journey.touches[len(journey.touches) - journey.tail_touches :]}
    runs: list[list[Touchpoint]] = []
    for item in journey.tail:
        if item.session_id in starts or not runs:
            runs.append([item])
        else:
            runs[-1].append(item)
    return [tuple(run) for run in runs]


def _session(run: tuple[Touchpoint, ...]) -> list[Any]:
    head, rows = run[0], [_row(run[0])]
    previous = head.ts
    for t in run[1:]:
        own = {n: v for n in _OWN if (v := getattr(t, n)) != getattr(head, n)}
        rows.append(
            [t.ts - previous, t.session_id, t.cost, own] if own else [t.ts - previous, t.session_id, t.cost]
        )
        previous = t.ts
    return rows


def _unsession(rows: list[Any]) -> list[Touchpoint]:
    head = Touchpoint(*rows[0])
    run, ts = [head], head.ts
    for delta, event_id, cost, *own in rows[1:]:
        ts += delta
        run.append(replace(head, ts=ts, session_id=event_id, cost=cost, **(own[0] if own else {})))
    return run


def _row(touch: Touchpoint) -> list[Any]:
    return [getattr(touch, name) for name in TOUCH_FIELDS]


def decode_journey(data: bytes | None) -> Journey:
    if not data:
        return Journey()
    scalars, old, raw, merged, pending = [*orjson.loads(data), [], [], [], []][:5]
    runs = [_unsession(rows) for rows in raw]
    return Journey(
        **dict(zip(_JOURNEY_SCALARS, scalars, strict=True)),
        touches=(*(Touchpoint(*row) for row in old), *(session_touch(run) for run in runs)),
        tail=tuple(t for run in runs for t in run),
        merged=tuple(merged),
        pending=tuple(
            Pending(conversion_event(*fields[:6]), revision, credited, tuple(channels))
            for *fields, revision, credited, channels in pending
        ),
    )
