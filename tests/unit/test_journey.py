"""The sessionisation rule and the journey state machine (DESIGN.md §1).

Every interaction is built with `click(minutes, ...)`: its ts is T0 + that
many minutes, and its event id (hence a session id) is `i<minutes>` unless
given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.journey import (
    Converted,
    Corrected,
    Journey,
    NullPath,
    Output,
    Rules,
    SessionClosed,
    TooLate,
    apply,
    close_idle,
    dumps,
    loads,
    merge,
    sessionise,
)
from stream.records import AttributionInput, Event, Touchpoint

# --- builders ----------------------------------------------------------------

T0 = 1_772_359_200_000  # 2026-03-01T10:00:00Z
MIN = 60_000
DAY = 24 * 60 * MIN
TIMEOUT = 30 * MIN
RULES = Rules()  # 30 min timeout, 90 d lookback, cap 200
EMPTY = Journey()


def ts(minutes: float) -> int:
    return T0 + int(minutes * MIN)


def click(
    minutes: float,
    channel: str = "email",
    *,
    at: int | None = None,
    event_id: str | None = None,
    cost: float = 0.0,
    **fields: Any,
) -> Event:
    """An interaction `minutes` after T0 (or exactly at `at`)."""
    when = ts(minutes) if at is None else at
    return Event(
        event_id or f"i{minutes}",
        "interaction",
        when,
        "p-1",
        anonymous_id="p-1",
        channel=channel,
        cost=cost,
        **fields,
    )


def convert(minutes: float, conversion: str = "purchase", *, at: int | None = None) -> Event:
    when = ts(minutes) if at is None else at
    return Event(
        f"c{minutes}",
        "conversion",
        when,
        "p-1",
        conversion=conversion,
        conversion_id=f"c{minutes}",
        value=100.0,
    )


def fold(
    events: Iterable[Event], rules: Rules = RULES, journey: Journey = EMPTY
) -> tuple[Journey, list[Output]]:
    """Apply `events` in order; the final journey and every output."""
    outputs: list[Output] = []
    for event in events:
        journey, out = apply(journey, event, rules)
        outputs += out
    return journey, outputs


def sessions(events: list[Event], rules: Rules = RULES) -> list[Touchpoint]:
    """The touches by both implementations, checked to agree."""
    touches = sessionise(events, rules.session_timeout_ms)
    assert list(fold(events, rules)[0].touches) == touches
    return touches


def ids(touches: Iterable[Touchpoint]) -> list[str]:
    return [t.session_id for t in touches]


def converted(outputs: list[Output]) -> list[AttributionInput]:
    return [o.attribution_input for o in outputs if isinstance(o, Converted)]


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


# --- conversions --------------------------------------------------------------


def test_conversion_credits_touches_at_or_before_it():
    events = [click(0, "email"), click(10, "sms"), convert(10), click(20, "push")]
    journey, outputs = fold(events)
    assert converted(outputs) == [AttributionInput(journey.touches[:2], ts(10))]


def test_conversion_arriving_late_ignores_later_touches():
    """Within the grace period (5 minutes late): credited on what came before it."""
    _, outputs = fold([click(0, "email"), click(35, "sms"), convert(30)])
    assert [t.channel for t in converted(outputs)[0].touches] == ["email"]


def test_events_later_than_the_grace_period_are_rejected():
    journey, outputs = fold([click(0, "email"), click(60, "sms"), convert(30), click(49, "push")])
    assert [(type(o).__name__, o.late_by_ms) for o in outputs if isinstance(o, TooLate)] == [
        ("TooLate", 30 * MIN),
        ("TooLate", 11 * MIN),
    ]
    assert [t.channel for t in journey.touches] == ["email", "sms"] and journey.conversions == 0


@pytest.mark.parametrize(("age", "credited"), [(DAY, ["i0", "recent"]), (DAY + 1, ["recent"])])
def test_lookback_window_edge(age, credited):
    rules = Rules(lookback_ms=DAY)
    conversion_ts = ts(0) + age
    events = [
        click(0),
        click(0, "sms", at=conversion_ts - 1, event_id="recent"),
        convert(0, at=conversion_ts),
    ]
    assert ids(converted(fold(events, rules)[1])[0].touches) == credited


def test_conversions_are_never_touchpoints_and_do_not_split_sessions():
    journey, outputs = fold([click(0), convert(1), click(2), convert(3)])
    assert ids(journey.touches) == ["i0"]
    assert [ids(inp.touches) for inp in converted(outputs)] == [["i0"], ["i0"]]
    assert journey.session_interactions == 2
    assert journey.conversions == 2


def test_conversion_without_touches_has_an_empty_input():
    journey, outputs = fold([convert(0)])
    assert outputs == [Converted(convert(0), AttributionInput((), ts(0)))]
    assert journey.touches == ()


def test_lead_and_opportunity_are_the_first_of_each():
    events = [
        click(0),
        convert(1, "purchase"),
        convert(2, "lead"),
        convert(3, "opportunity"),
        convert(4, "lead"),
        convert(5, "opportunity"),
    ]
    journey, outputs = fold(events)
    assert [(i.lead_ts, i.opportunity_ts) for i in converted(outputs)] == [
        (None, None),
        (ts(2), None),  # the current conversion is included
        (ts(2), ts(3)),
        (ts(2), ts(3)),
        (ts(2), ts(3)),
    ]
    assert (journey.lead_ts, journey.opportunity_ts, journey.conversions) == (ts(2), ts(3), 5)


def test_first_lead_is_first_in_event_time():
    journey, _ = fold([convert(20, "lead"), convert(10, "lead")])
    assert journey.lead_ts == ts(10)


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


# --- bounds -------------------------------------------------------------------


def test_journey_cap_keeps_the_newest_touches():
    channels = ["email", "sms", "push", "display", "video"]
    journey, outputs = fold([click(i, c) for i, c in enumerate(channels)], Rules(journey_cap=3))
    assert [t.channel for t in journey.touches] == ["push", "display", "video"]
    assert len(outputs) == 4  # every replaced session was closed


def test_lookback_trims_old_touches():
    rules = Rules(lookback_ms=DAY)
    events = [click(0), click(0, "sms", at=ts(0) + 1), click(0, "push", at=ts(0) + DAY + 1, event_id="new")]
    journey, _ = fold(events, rules)
    assert [t.channel for t in journey.touches] == ["sms", "push"]  # exactly DAY old is kept


def test_conversion_advances_the_lookback_trim():
    journey, _ = fold([click(0), convert(0, at=ts(0) + DAY + 1)], Rules(lookback_ms=DAY))
    assert journey.touches == ()


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
                f"e{n}",
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
    assert loads(dumps(journey)) == journey


# --- storage form ---------------------------------------------------------------


def test_dumps_loads_round_trip():
    events = [
        click(0, context={"page": "/pricing", "n": 2}, cost=1.5, source="google"),
        click(3, "sms"),
        convert(4, "lead"),
        convert(5, "opportunity"),
    ]
    journey, _ = fold(events)
    assert loads(dumps(journey)) == journey


def test_loads_of_nothing_is_an_empty_journey():
    assert loads(None) == Journey()
    assert loads(b"") == Journey()


# --- expiry: null paths -------------------------------------------------------------

LOOKBACK = RULES.lookback_ms


def control(kind: str, when: int) -> Event:
    return Event(f"{kind}@{when}", kind, when, "p-1")  # type: ignore[arg-type]


def test_a_person_returning_after_the_lookback_expires_the_old_journey_first():
    """email, paid_search (never converted); 90 days + 1 ms later a direct visit:
    the old touches become one null path, the open session closes as expired, the new
    visit starts a fresh journey."""
    journey, outputs = fold(
        [click(0), click(60, "paid_search"), click(0, "direct", at=ts(60) + LOOKBACK + 1)]
    )
    nulls = [o for o in outputs if isinstance(o, NullPath)]
    assert nulls == [NullPath(("email", "paid_search"))]
    assert [o.closed_by for o in outputs if isinstance(o, SessionClosed)] == ["next_session", "expired"]
    assert [t.channel for t in journey.touches] == ["direct"] and journey.conversions == 0


def test_exactly_lookback_idle_does_not_expire():
    _, outputs = fold([click(0), click(0, "direct", at=ts(0) + LOOKBACK)])
    assert not [o for o in outputs if isinstance(o, NullPath)]


def test_expire_event_keeps_only_touches_after_the_last_conversion():
    """email, conversion, then sms and display: only sms > display is a null path."""
    journey, _ = fold([click(0), convert(10), click(20, "sms"), click(40, "display")])
    journey, outputs = apply(journey, control("expire", ts(40) + LOOKBACK + 1), RULES)
    assert [o for o in outputs if isinstance(o, NullPath)] == [NullPath(("sms", "display"))]
    assert journey == Journey()


def test_expire_after_a_conversion_with_no_later_touch_is_no_null_path():
    journey, _ = fold([click(0), convert(10)])
    journey, outputs = apply(journey, control("expire", ts(10) + LOOKBACK + 1), RULES)
    assert outputs == [SessionClosed(Touchpoint(ts(0), "email", "i0"), ts(0), 1, "expired")]
    assert journey == Journey()


def test_expire_too_early_and_close_idle_events():
    journey, _ = fold([click(0)])
    assert apply(journey, control("expire", ts(0) + LOOKBACK), RULES) == (journey, [])
    assert apply(journey, control("close_idle", ts(0) + TIMEOUT), RULES) == (journey, [])
    closed, outputs = apply(journey, control("close_idle", ts(0) + TIMEOUT + 1), RULES)
    assert [o.closed_by for o in outputs] == ["idle"] and not closed.session_open


def test_lookback_per_conversion_type():
    """lead: 30 days, others 90: a touch 40 days old credits the purchase, not the lead;
    the journey keeps touches for the longest lookback."""
    rules = Rules(lookback_by_type=(("lead", 30 * DAY),))
    old, recent = click(0, "display"), click(40 * 24 * 60, "email")
    lead_at, purchase_at = ts(40 * 24 * 60 + 1), ts(40 * 24 * 60 + 2)
    journey, outputs = fold([old, recent, convert(0, "lead", at=lead_at), convert(1, at=purchase_at)], rules)
    lead, purchase = converted(outputs)
    assert [t.channel for t in lead.touches] == ["email"]
    assert [t.channel for t in purchase.touches] == ["display", "email"]
    assert rules.longest == RULES.lookback_ms and len(journey.touches) == 2


# --- late arrivals within the grace period -----------------------------------------


def test_a_late_interaction_merges_two_sessions_and_corrects_the_conversion():
    """email at 0 and at 31 (31 min apart: two sessions), a conversion at 32 credited on
    both; then a late email at 25 (7 min behind, inside the 10-min grace): 0, 25, 31 are
    one session, so the conversion is re-credited on one touch, as revision 1."""
    journey, outputs = fold([click(0), click(31, event_id="e31"), convert(32)])
    assert [t.session_id for t in converted(outputs)[0].touches] == ["i0", "e31"]
    journey, outputs = apply(journey, click(25, event_id="late"), RULES)
    [correction] = outputs
    assert isinstance(correction, Corrected) and correction.revision == 1
    assert [t.session_id for t in correction.attribution_input.touches] == ["i0"]
    assert correction.previous_channels == ("email", "email")
    assert [t.session_id for t in journey.touches] == ["i0"] and journey.session_interactions == 3
    assert journey.touches == tuple(sessionise([click(0), click(25, event_id="late"), click(31)], TIMEOUT))


def test_a_late_interaction_that_changes_nothing_emits_no_correction():
    journey, _ = fold([click(0), convert(5), click(6, "sms")])
    journey, outputs = apply(journey, click(7, "sms", event_id="late"), RULES)  # after the conversion
    assert outputs == [] and journey.session_interactions == 2


def test_late_interactions_give_the_sessions_of_the_sorted_order():
    """Property in small: any arrival order within the grace period ends with the touches
    `sessionise` gives for the time-sorted interactions."""
    events = [click(0), click(3, "sms"), click(5), click(8), click(9, "sms")]
    for order in ([0, 1, 2, 3, 4], [1, 0, 2, 4, 3], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1]):
        journey, _ = fold([events[i] for i in order])
        assert journey.touches == tuple(sessionise(events, TIMEOUT)), order


@given(
    st.lists(st.tuples(st.integers(0, 10 * MIN), st.sampled_from(["email", "sms"])), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_any_arrival_order_within_grace_gives_the_sorted_sessions(raw, rnd):
    """Every event within 10 minutes of the others: whatever the arrival order, the final
    touches are `sessionise` of the interactions (equal timestamps keep arrival order, so
    they are made distinct here)."""
    events = [
        click(0, channel, at=T0 + ms * 100 + i, event_id=f"e{i}") for i, (ms, channel) in enumerate(raw)
    ]
    arrival = events[:]
    rnd.shuffle(arrival)
    journey, _ = fold(arrival, Rules(grace_ms=10**9))
    assert journey.touches == tuple(sessionise(events, TIMEOUT))


# --- identity stitching -----------------------------------------------------------------


def test_merge_interleaves_the_anonymous_journey_in_time_order_once():
    """a device browses (email at 0, sms at 120); the customer visits at 60 (display), then
    the device is identified: the customer's journey holds all three in time order; merging
    the same anonymous id again changes nothing."""
    device, _ = fold([click(0), click(120, "sms")])
    customer, _ = fold([click(60, "display")])
    merged, outputs = merge(customer, device, "a-1", RULES)
    assert [t.channel for t in merged.touches] == ["email", "display", "sms"] and outputs == []
    assert merged.merged == ("a-1",) and merged.last_ts == ts(120)
    assert merge(merged, device, "a-1", RULES) == (merged, [])


def test_merging_touches_into_a_pending_conversion_corrects_it():
    """the customer converted at 31 on its own touch; a device that browsed at 25 is then
    identified (within grace): the conversion is re-credited on both, as revision 1."""
    customer, _ = fold([click(30, "display"), convert(31)])
    device, _ = fold([click(25, "email", event_id="d")])
    _, outputs = merge(customer, device, "a-1", RULES)
    [correction] = outputs
    assert isinstance(correction, Corrected) and correction.revision == 1
    assert [t.channel for t in correction.attribution_input.touches] == ["email", "display"]


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from(["email", "sms", "push"])), min_size=1, max_size=10
    ),
    st.randoms(use_true_random=False),
    st.integers(1, 3),
)
def test_the_tail_never_describes_more_sessions_than_the_journey_keeps(raw, rnd, cap):
    """With a tiny journey cap and any arrival order within grace, the unsettled sessions
    never outnumber the kept touches, and the cap holds."""
    events = [click(minute, channel, event_id=f"e{i}") for i, (minute, channel) in enumerate(raw)]
    rnd.shuffle(events)
    journey = EMPTY
    for event in events:
        journey, _ = apply(journey, event, Rules(journey_cap=cap))
        assert journey.tail_touches <= len(journey.touches) <= cap
