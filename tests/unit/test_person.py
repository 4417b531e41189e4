"""One person's batch applied exactly once: fence, dedup, outputs (DESIGN.md §6)."""

from __future__ import annotations

import orjson

from stream.core.config import Config, Rules
from stream.core.person import Fence, PersonState, Positioned, StepResult, id_key, step
from stream.core.records import Event
from stream.core.revenue import Revenue, Stored
from stream.core.topics import CONVERSIONS, CREDITS, DLQ, PATHS, PERSONS, REPORT, SESSIONS
from tests.support.events import MIN, T0

# --- builders ----------------------------------------------------------------

TP = "touchstream-person:3"
CONFIG = Config(models=("first_touch", "linear"))
FRESH = PersonState()


def click(event_id: str, minute: int, channel: str = "email") -> Event:
    return Event(event_id, "interaction", T0 + minute * MIN, "c-7", customer_id="c-7", channel=channel)


def convert(event_id: str, minute: int, value: float = 100.0) -> Event:
    return Event(
        event_id,
        "conversion",
        T0 + minute * MIN,
        "c-7",
        customer_id="c-7",
        conversion="purchase",
        conversion_id=event_id,
        value=value,
        currency="EUR",
    )


def at(offset: int, *events: Event, tp: str = TP) -> list[Positioned]:
    """`events` at consecutive offsets from `offset`."""
    return [Positioned(tp, offset + i, e) for i, e in enumerate(events)]


def pos(offset: int, tp: str = TP) -> str:
    """Where an event's outputs are kept in the outbox."""
    return f"{tp}@{offset}"


def run(events: list[Positioned], state: PersonState = FRESH, config: Config = CONFIG) -> StepResult:
    return step("c-7", state, events, config)


JOURNEY = (click("e1", 0, "email"), click("e2", 1, "paid_search"), convert("e3", 2))


def keys(*event_ids: str) -> tuple[str, ...]:
    return tuple(id_key(e) for e in event_ids)


def values(result: StepResult) -> list[bytes]:
    return [m.value for position in result.outbox for m in result.outbox[position]]


# --- first application --------------------------------------------------------


def test_first_application_writes_fence_and_outputs():
    result = run(at(10, *JOURNEY))
    assert (result.state.fence.version, result.state.fence.offsets) == (0, {TP: 12})
    assert result.state.fence.recent_keys == keys("e1", "e2", "e3")
    assert (result.replayed, result.duplicates, result.changed) == ([], 0, True)
    # every interaction counts in the reports; e2 also closed e1's session; e3 converted
    assert sorted(result.outbox) == [pos(10), pos(11), pos(12)]
    assert [(m.topic, m.key) for m in result.outbox[pos(10)]] == [(REPORT, None)]
    assert [(m.topic, m.key) for m in result.outbox[pos(11)]] == [(SESSIONS, b"c-7"), (REPORT, None)]
    assert [(m.topic, m.key) for m in result.outbox[pos(12)]] == [
        (CONVERSIONS, b"c-7"),
        (CREDITS, b"email"),
        (CREDITS, b"paid_search"),  # first_touch
        (CREDITS, b"email"),
        (CREDITS, b"paid_search"),  # linear
        (PATHS, None),  # the converting path email > paid_search, for the data-driven models
    ]
    assert orjson.loads(result.outbox[pos(12)][-1].value) == {
        "path": ["email", "paid_search"],
        "conversions": 1,
        "value_micros": 100_000_000,
        "nulls": 0,
    }
    # the conversion is stored with its attribution value, for late revenue (no revenue yet)
    [stored] = result.conversions
    assert stored.conversion_id == "e3" and stored.attribution_changed and not stored.revenue_changed
    assert stored.record.attribution == orjson.loads(result.outbox[pos(12)][0].value)
    assert Stored.loads(stored.record.attribution_bytes()) == stored.record  # the compact record


def test_conversion_value_carries_every_model():
    doc = orjson.loads(run(at(10, *JOURNEY)).outbox[pos(12)][0].value)
    assert doc["attribution_id"] == "e3"
    assert doc["models"] == {
        "first_touch": {"shares": [1.0, 0.0], "values": [100.0, 0.0]},
        "linear": {"shares": [0.5, 0.5], "values": [50.0, 50.0]},
    }


def test_credit_rows_are_one_per_model_and_touch():
    rows = [orjson.loads(m.value) for m in run(at(10, *JOURNEY)).outbox[pos(12)] if m.topic == CREDITS]
    assert [(r["model"], r["touchpoint_index"], r["share"], r["value"]) for r in rows] == [
        ("first_touch", 0, 1.0, 100.0),
        ("first_touch", 1, 0.0, 0.0),
        ("linear", 0, 0.5, 50.0),
        ("linear", 1, 0.5, 50.0),
    ]


def test_unattributed_conversion_emits_one_row_per_model():
    result = run(at(0, convert("e1", 0, value=40.0)))
    assert [(m.topic, m.key) for m in result.outbox[pos(0)]] == [
        (CONVERSIONS, b"c-7"),
        (CREDITS, b"(unattributed)"),
        (CREDITS, b"(unattributed)"),
    ]


# --- replays and duplicates ----------------------------------------------------


def test_replaying_applied_events_changes_nothing():
    first = run(at(10, *JOURNEY))
    again = run(at(10, *JOURNEY), first.state)
    assert again.replayed == [pos(10), pos(11), pos(12)]
    assert (again.outbox, again.conversions, again.duplicates, again.changed) == ({}, [], 0, False)
    assert again.state == first.state


def test_resuming_after_a_partial_write_applies_only_the_rest():
    partial = run(at(10, *JOURNEY[:2]))
    rest = run(at(10, *JOURNEY), partial.state)
    assert rest.replayed == [pos(10), pos(11)]
    assert sorted(rest.outbox) == [pos(12)]
    assert values(rest)[0] == run(at(10, *JOURNEY)).outbox[pos(12)][0].value


def test_same_event_id_at_a_new_offset_is_a_duplicate():
    first = run(at(10, *JOURNEY))
    dup = run(at(13, JOURNEY[2]), first.state)
    assert (dup.duplicates, dup.outbox, dup.conversions, dup.replayed) == (1, {}, [], [])
    assert dup.state.fence.offsets == {TP: 13}
    assert dup.changed
    assert dup.state.journey == first.state.journey


def test_duplicate_inside_one_batch_is_skipped():
    result = run(at(10, click("e1", 0), click("e1", 0)))
    assert result.duplicates == 1
    assert result.state.fence.recent_keys == keys("e1")
    assert result.state.journey.session_interactions == 1


def test_fence_is_per_topic_partition():
    first = run(at(10, *JOURNEY))
    other = run(at(0, click("e4", 3), tp="touchstream-person:4"), first.state)
    assert other.replayed == []
    assert other.state.fence.offsets == {TP: 12, "touchstream-person:4": 0}


def test_recent_ids_are_bounded():
    config = Config(models=CONFIG.models, recent_ids=2)
    result = run(at(10, *JOURNEY), config=config)
    assert result.state.fence.recent_keys == keys("e2", "e3")
    forgotten = run(at(13, click("e1", 3)), result.state, config)
    assert forgotten.duplicates == 0  # e1 fell out of the window
    assert forgotten.state.fence.recent_keys == keys("e3", "e1")


def test_zero_recent_ids_remembers_none():
    result = run(at(10, *JOURNEY), config=Config(models=CONFIG.models, recent_ids=0))
    assert result.state.fence.recent_keys == ()


def test_fence_version_is_left_to_the_store():
    state = PersonState(fence=Fence(version=7))
    assert run(at(0, click("e1", 0)), state).state.fence.version == 7


# --- determinism -----------------------------------------------------------------


def test_same_input_gives_byte_identical_values():
    config = Config(rules=Rules(), models=("first_touch", "linear", "time_decay", "w_shaped"))
    events = at(10, *JOURNEY, click("e4", 40, "sms"), convert("e5", 41, 10.0))
    first, second = run(events, config=config), run(events, config=config)
    assert values(first) == values(second)
    assert first.conversions == second.conversions
    # per interaction a report message (the second and the third closed a session too); per
    # conversion its value, its credit rows and a path message
    assert len(values(first)) == 1 + 2 + (1 + 2 * 4 + 1) + 2 + (1 + 3 * 4 + 1)


def test_batch_boundaries_do_not_change_the_values():
    events = at(10, *JOURNEY, click("e4", 40, "sms"), convert("e5", 41, 10.0))
    whole = run(events)
    state, split = PersonState(), []
    for cut in (events[:2], events[2:4], events[4:]):
        part = run(cut, state)
        state, split = part.state, split + values(part)
    assert split == values(whole)
    assert state == whole.state


def test_same_event_id_with_different_content_goes_to_the_dlq():
    """e2 again at a new offset: identical content is a silent redelivery; other content
    (another channel) is a conflict, sent to the DLQ with the offending event."""
    first = run(at(10, *JOURNEY))
    again = run(at(20, click("e2", 1, "paid_search"), click("e2", 1, "sms")), first.state)
    assert again.duplicates == 2 and sorted(again.outbox) == [pos(21)]
    [dead] = again.outbox[pos(21)]
    doc = orjson.loads(dead.value)
    assert (dead.topic, dead.key, doc["offset"]) == (DLQ, b"c-7", 21)
    assert doc["reason_code"] == "duplicate_event_id"
    assert orjson.loads(doc["raw"])["channel"] == "sms"
    assert again.state.journey == first.state.journey


def revenue(event_id: str, minute: int, conversion_id: str, value: float) -> Event:
    return Event(event_id, "revenue", T0 + minute * MIN, "c-7", conversion_id=conversion_id, value=value)


def test_revenue_is_credited_over_the_stored_conversion_and_adds_up():
    """e3 (purchase 100) credited email/paid_search linear 0.5/0.5; revenue 40 then 60 on it:
    values 20/20 then 30/30, running total 40 then 100."""
    first = run(at(10, *JOURNEY))
    stored = {c.conversion_id: c.record for c in first.conversions}
    state = PersonState(first.state.journey, first.state.fence, stored)
    later = run(at(13, revenue("r1", 500, "e3", 40.0), revenue("r2", 600, "e3", 60.0)), state)
    docs = [orjson.loads(later.outbox[pos(o)][0].value) for o in (13, 14)]
    assert [d["kind"] for d in docs] == ["revenue", "revenue"]
    assert [d["models"]["linear"]["values"] for d in docs] == [[20.0, 20.0], [30.0, 30.0]]
    assert [d["revenue"]["total_value"] for d in docs] == [40.0, 100.0]
    [updated] = later.conversions
    # only the revenue is written: the attribution stays as it was
    assert updated.revenue_changed and not updated.attribution_changed
    assert updated.record.revenue == Revenue(100.0, 2)
    assert Revenue.loads(updated.record.revenue.dumps()) == Revenue(100.0, 2)


def test_revenue_for_an_unknown_conversion_goes_to_the_dlq():
    result = run(at(0, revenue("r1", 0, "nope", 5.0)))
    [dead] = result.outbox[pos(0)]
    assert dead.topic == DLQ and orjson.loads(dead.value)["reason_code"] == "unknown_conversion"
    assert result.conversions == []


def test_a_second_conversion_with_the_same_conversion_id_goes_to_the_dlq():
    """The stored record (and its revenue total) of the first one is never overwritten."""
    first = run(at(10, *JOURNEY))
    stored = {c.conversion_id: c.record for c in first.conversions}
    state = PersonState(first.state.journey, first.state.fence, stored)
    again = Event(
        "e9",
        "conversion",
        T0 + 50 * MIN,
        "c-7",
        customer_id="c-7",
        conversion="purchase",
        conversion_id="e3",
        value=5.0,
    )
    result = run(at(13, again), state)
    [dead] = result.outbox[pos(13)]
    assert orjson.loads(dead.value)["reason_code"] == "duplicate_conversion_id"
    assert result.conversions == [] and result.state.journey == first.state.journey


# --- a device's event identified as its customer's -----------------------------


def test_a_devices_event_naming_its_customer_is_forwarded_and_replayed_not_reapplied():
    device = Event("d1", "interaction", T0, "c-7", anonymous_id="a-1", channel="display")
    own = Event("a0", "interaction", T0 - 5 * MIN, "a-1", anonymous_id="a-1", channel="email")
    seen = step("a-1", FRESH, at(40, own), CONFIG)  # the device's journey, before the identify
    first = step("a-1", seen.state, at(41, device), CONFIG)
    assert [(m.topic, m.key) for m in first.outbox[pos(41)]] == [(PERSONS, b"c-7")]
    assert first.state.journey == seen.state.journey  # forwarded, not applied
    # the customer dedups it: kept here, merging this device would make its copy a duplicate
    assert first.state.fence.recent_keys == keys("a0")
    # read again (a crash before the commit): a replay, not a second application
    again = step("a-1", first.state, at(41, device), CONFIG)
    assert (again.replayed, again.outbox, again.changed) == ([pos(41)], {}, False)


def test_a_devices_revenue_naming_its_customer_is_forwarded_to_the_customers_conversions():
    paid = Event("r1", "revenue", T0, "c-7", anonymous_id="a-1", conversion_id="k1", value=5.0)
    result = step("a-1", FRESH, at(7, paid), CONFIG)  # not the device's conversion to look for
    assert [(m.topic, m.key) for m in result.outbox[pos(7)]] == [(PERSONS, b"c-7")]
