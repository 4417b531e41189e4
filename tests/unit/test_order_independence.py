"""Whatever order a person's events are processed in, the result is the time-sorted one.

A person browses on an anonymous device and as a known customer; an identify links the
two; conversions come by customer id. Events of each key are processed in their order
(as Kafka keeps each partition), the two keys interleaved any way (partitions drained
at any pace), through the batch mode — the stream's own routing, per-person step and
tombstone forwarding. The customer's final journey and the latest revision of every
conversion must equal what the time-sorted events give (revision numbers aside: more
interleaving means more revisions).
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.attribution import HEURISTIC
from stream.core.config import DAY_MS, MINUTE_MS, Config, Limits
from stream.devtools import devices
from stream.offline.replay import EventReplay
from tests.support.revisions import canonical, latest

T0 = 1_772_359_200_000
NOW = T0 + 400 * DAY_MS
CONFIG = Config(models=HEURISTIC)
CHANNELS = ("email", "paid_search", "display", "direct")


def replay(events: list[dict[str, Any]]) -> tuple[EventReplay, dict[str, dict[str, Any]]]:
    """The replay, and the latest revision of each conversion (revision number blanked)."""
    run = EventReplay(CONFIG, Limits(), NOW)
    values = list(run.run(orjson.dumps(e) for e in events))
    assert run.rejected == []
    return run, latest(values)


@st.composite
def two_devices(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One person's events in time order: interactions of both devices, an identify, conversions."""
    events: list[dict[str, Any]] = []
    ts, known = T0, False
    for n in range(draw(st.integers(2, 9))):
        ts += draw(st.sampled_from((MINUTE_MS, 7 * MINUTE_MS, 20 * MINUTE_MS, 40 * MINUTE_MS, DAY_MS)))
        kind = draw(st.sampled_from(("anon", "anon", "known", "identify", "convert")))
        if kind == "identify" and not known:
            events.append(
                {"event_id": f"id{n}", "type": "identify", "ts": ts, "anonymous_id": "a", "customer_id": "c"}
            )
            known = True
        elif kind == "convert" and known:
            lead = draw(st.booleans())
            events.append(
                {
                    "event_id": f"v{n:02d}",
                    "type": "conversion",
                    "ts": ts,
                    "customer_id": "c",
                    "conversion": "lead" if lead else "purchase",
                    "value": 0.0 if lead else 100.0,
                }
            )
        else:
            device = {"anonymous_id": "a"} if kind == "anon" else {"customer_id": "c"}
            channel = draw(st.sampled_from(CHANNELS))
            events.append(
                {"event_id": f"i{n:02d}", "type": "interaction", "ts": ts, "channel": channel, **device}
            )
    return events


@st.composite
def interleaving(draw: st.DrawFn, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with each key's in its published order — time order, with some
    neighbours swapped, as producers do — and the keys interleaved any way."""
    queues = {k: [e for e in events if devices.key(e) == k] for k in ("a", "c")}
    for queue in queues.values():
        for i in range(len(queue) - 1):
            if draw(st.integers(0, 4)) == 0:
                queue[i], queue[i + 1] = queue[i + 1], queue[i]
    out = []
    while any(queues.values()):
        k = draw(st.sampled_from(sorted(k for k, q in queues.items() if q)))
        out.append(queues[k].pop(0))
    return out


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_interleaving_of_two_devices_gives_the_time_sorted_result(data: st.DataObject) -> None:
    events = data.draw(two_devices())
    order = data.draw(interleaving(events))
    expected_run, expected = replay(events)
    run, got = replay(order)
    assert got == expected
    customer = expected_run.states.get("c")
    if customer is not None:
        assert canonical(run.states["c"].journey) == canonical(customer.journey)


def test_the_generated_scenario_in_any_publication_order() -> None:
    """60 persons of the multi-device scenario: time order, the anonymous device lagging
    behind the customers (all of its events after), and the anonymous device first."""
    events = devices.persons(60, seed=4, start_ms=T0)
    expected_run, expected = replay(events)
    known, anonymous = devices.by_device(devices.publication_order(events, seed=5))
    for order in (known + anonymous, anonymous + known):
        run, got = replay(order)
        assert got == expected
        for pid, state in expected_run.states.items():
            if state.journey.merged_into is None:
                assert canonical(run.states[pid].journey) == canonical(state.journey), pid
