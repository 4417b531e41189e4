"""Comparing results whatever the order events were processed in.

More out-of-order arrival means more revisions of a conversion, never a different latest
one: `latest` keeps each conversion's latest revision with the revision number blanked,
and `canonical` blanks the revision numbers a journey keeps of its conversions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from msgspec.structs import replace

from stream.core.journey import Journey
from stream.core.state_codec import decode_state
from stream.settings import Settings
from tests.support import redis_target


def latest(docs: Iterable[dict[str, Any] | bytes]) -> dict[str, dict[str, Any]]:
    """attribution id -> the latest revision of each conversion value, `revision` blanked."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        value = orjson.loads(doc) if isinstance(doc, bytes) else doc
        if value["kind"] != "conversion":
            continue
        seen = out.get(value["attribution_id"])
        if seen is None or value["revision"] >= seen["revision"]:
            out[value["attribution_id"]] = value
    return {k: {**v, "revision": None} for k, v in out.items()}


def canonical(journey: Journey) -> Journey:
    return replace(journey, pending=tuple(replace(p, revision=0) for p in journey.pending))


def stored_journeys(target: Settings | str, person_ids: Iterable[str]) -> dict[str, Journey]:
    """The journeys the Redis of `target` holds for these persons (an empty journey where
    there is none); `target` a single Redis's URL: the default key prefix."""
    settings = Settings(redis_url=target) if isinstance(target, str) else target
    pids = list(person_ids)
    names = [redis_target.keys(settings).person(pid, "state") for pid in pids]
    raw = redis_target.get_many(settings, names) if pids else []
    return {pid: decode_state(value).journey for pid, value in zip(pids, raw, strict=True)}


def journeys_differing(expected: dict[str, Journey], got: dict[str, Journey]) -> list[str]:
    """Persons whose journeys differ: a customer's (or never-merged person's) journey in
    full, revision numbers aside; a merged anonymous person only by whom it merged into
    (what its tombstone kept depends on when the identify was processed)."""
    off = []
    for pid, journey in expected.items():
        mine = got.get(pid, Journey())
        if journey.merged_into is not None:
            if mine.merged_into != journey.merged_into:
                off.append(pid)
        elif canonical(mine) != canonical(journey):
            off.append(pid)
    return off


def difference(expected: Journey, got: Journey) -> str:
    """What differs between two journeys, field by field, briefly (for a failing test's report)."""
    a, b = canonical(expected), canonical(got)
    return "; ".join(
        f"{name}: expected {_brief(getattr(a, name))}, got {_brief(getattr(b, name))}"
        for name in Journey.__struct_fields__
        if getattr(a, name) != getattr(b, name)
    )


def _brief(value: Any) -> str:
    """Touchpoints as (ts, channel), conversions as (ts, event id, revision): what tells them apart."""
    if isinstance(value, tuple) and value and hasattr(value[0], "channel"):
        return repr([(t.ts, t.channel) for t in value])
    if isinstance(value, tuple) and value and hasattr(value[0], "credited"):
        return repr([(p.event.ts, p.event.event_id, p.revision) for p in value])
    return repr(value)
