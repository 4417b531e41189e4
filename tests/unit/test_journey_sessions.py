"""The sessionisation rule (DESIGN.md §1): which interactions make one session, when a
session closes, the incremental `apply` agreeing with the whole-list rule, the stored form.

Builders: tests/support/journeys.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.apply import apply, close_idle
from stream.core.codec import decode_journey, encode_journey
from stream.core.config import Rules
from stream.core.journey import Journey, SessionClosed, sessionise
from stream.core.records import Event, Touchpoint
from tests.support.events import T0
from tests.support.journeys import RULES, TIMEOUT, click, convert, fold, ids, sessions, ts

# --- sessionisation rule ------------------------------------------------------


def test_gap_equal_to_timeout_stays_in_the_session():
    events = [click(0), click(0, at=ts(0) + TIMEOUT, event_id="late")]
    assert ids(sessions(events)) == ["i0"]


def test_gap_one_ms_over_timeout_starts_a_new_session():
    events = [click(0), click(0, at=ts(0) + TIMEOUT + 1, event_id="late")]
    assert ids(sessions(events)) == ["i0", "late"]


def test_gap_is_measured_from_the_previous_interaction_not_the_session_start():
    assert ids(sessions([click(0), click(25), click(50), click(75)])) == ["i0"]


@pytest.mark.parametrize("field", ["source", "medium", "campaign"])
def test_touch_key_field_change_starts_a_new_session(field):
    events = [click(0, **{field: "a"}), click(1, **{field: "a"}), click(2, **{field: "b"})]
    assert ids(sessions(events)) == ["i0", "i2"]


def test_channel_change_starts_a_new_session_and_returning_starts_another():
    events = [click(0, "email"), click(1, "paid_search"), click(2, "email")]
    assert [t.channel for t in sessions(events)] == ["email", "paid_search", "email"]


def test_equal_timestamps_keep_arrival_order():
    same = [click(0, event_id="a"), click(0, event_id="b"), click(0, "sms", event_id="c")]
    assert ids(sessions(same)) == ["a", "c"]


def test_one_interaction_journey_is_one_touch_with_its_fields():
    event = click(
        0,
        "paid_search",
        cost=1.22,
        source="google",
        medium="cpc",
        campaign="brand-fr",
        interaction="click",
        medium_kind="digital",
        directness="direct",
        stage="pre_purchase",
    )
    assert sessions([event]) == [
        Touchpoint(
            ts(0),
            "paid_search",
            "i0",
            source="google",
            medium="cpc",
            campaign="brand-fr",
            interaction="click",
            medium_kind="digital",
            directness="direct",
            stage="pre_purchase",
            cost=1.22,
        )
    ]


def test_session_has_first_fields_and_summed_cost():
    events = [
        click(0, cost=1.5, interaction="open"),
        click(5, cost=2.25, interaction="click"),
        click(9, cost=0.25),
    ]
    assert sessions(events) == [Touchpoint(ts(0), "email", "i0", interaction="open", cost=4.0)]


def test_sessionise_sorts_by_event_time():
    assert ids(sessionise([click(40, "sms"), click(0), click(10)], TIMEOUT)) == ["i0", "i40"]


def test_identify_and_revenue_leave_the_journey_alone():
    journey, _ = fold([click(0)])
    for kind in ("identify", "revenue"):
        event = Event("x", kind, ts(1), "p-1", anonymous_id="p-1", customer_id="c-1")
        assert apply(journey, event, RULES) == (journey, [])


# --- closing sessions ----------------------------------------------------------


def test_next_session_closes_the_current_one():
    journey, outputs = fold([click(0, cost=1.0), click(5, cost=2.0)])
    assert outputs == []
    journey, outputs = apply(journey, click(10, "sms"), RULES)
    assert outputs == [SessionClosed(Touchpoint(ts(0), "email", "i0", cost=3.0), ts(5), 2, "next_session")]
    assert (journey.session_last_ts, journey.session_interactions, journey.session_open) == (ts(10), 1, True)


def test_close_idle_waits_strictly_more_than_the_timeout():
    journey, _ = fold([click(0), click(5)])
    assert close_idle(journey, ts(5) + TIMEOUT, RULES) == (journey, None)
    closed, session = close_idle(journey, ts(5) + TIMEOUT + 1, RULES)
    assert session == SessionClosed(Touchpoint(ts(0), "email", "i0"), ts(5), 2, "idle")
    assert not closed.session_open
    assert closed.touches == journey.touches


def test_closed_session_is_not_closed_again():
    journey, _ = fold([click(0)])
    journey, _ = close_idle(journey, ts(60), RULES)
    assert close_idle(journey, ts(120), RULES) == (journey, None)
    journey, outputs = apply(journey, click(90, "sms"), RULES)
    assert outputs == []
    assert ids(journey.touches) == ["i0", "i90"]
    assert journey.session_open


def test_close_idle_on_an_empty_journey_does_nothing():
    assert close_idle(Journey(), ts(0), RULES) == (Journey(), None)


# --- incremental apply agrees with the whole-list rule ---------------------------

KEYS = [
    ("email", None, None, None),
    ("email", "news", "mail", "spring"),
    ("paid_search", "google", "cpc", None),
]
GAPS = st.sampled_from([0, 1, TIMEOUT - 1, TIMEOUT, TIMEOUT + 1, 3 * TIMEOUT]) | st.integers(0, 2 * TIMEOUT)
STEPS = st.lists(st.tuples(GAPS, st.sampled_from(KEYS), st.integers(0, 500)), max_size=30)


@given(STEPS)
def test_apply_folds_to_sessionise(steps):
    events, now = [], T0
    for n, (gap, (channel, source, medium, campaign), cents) in enumerate(steps):
        now += gap
        events.append(
            Event(
                f"e{n:03d}",  # ids sort in arrival order: equal timestamps are in order
                "interaction",
                now,
                "p-1",
                channel=channel,
                source=source,
                medium=medium,
                campaign=campaign,
                cost=cents / 100,
            )
        )
    rules = Rules(lookback_ms=10**15, journey_cap=10**6)
    journey, outputs = fold(events, rules)
    assert list(journey.touches) == sessionise(events, TIMEOUT)
    assert len(outputs) == max(len(journey.touches) - 1, 0)
    assert all(o.closed_by == "next_session" for o in outputs)
    assert decode_journey(encode_journey(journey)) == journey


# --- storage form ---------------------------------------------------------------


def test_journey_codec_round_trip():
    events = [
        click(0, context={"page": "/pricing", "n": 2}, cost=1.5, source="google"),
        click(3, "sms"),
        convert(4, "lead"),
        convert(5, "opportunity"),
    ]
    journey, _ = fold(events)
    assert decode_journey(encode_journey(journey)) == journey


def test_loads_of_nothing_is_an_empty_journey():
    assert decode_journey(None) == Journey()
    assert decode_journey(b"") == Journey()
