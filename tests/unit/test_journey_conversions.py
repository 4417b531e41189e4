"""Conversions on the journey state machine (DESIGN.md §1): what each is credited on, the
lookback and the cap, and journeys that expire as null paths.

Builders: tests/support/journeys.py.
"""

from __future__ import annotations

import pytest

from stream.core.apply import apply
from stream.core.config import EXPIRY_SLACK_MS, Rules
from stream.core.journey import Converted, Journey, NullPath, SessionClosed, TooLate
from stream.core.records import AttributionInput, Touchpoint
from tests.support.events import DAY, MIN
from tests.support.journeys import LOOKBACK, RULES, TIMEOUT, click, control, convert, converted, fold, ids, ts

# --- conversions --------------------------------------------------------------


def test_conversion_credits_touches_at_or_before_it():
    events = [click(0, "email"), click(10, "sms"), convert(10), click(20, "push")]
    journey, outputs = fold(events)
    assert converted(outputs) == [AttributionInput(journey.touches[:2], ts(10))]


def test_conversion_arriving_late_ignores_later_touches():
    """5 minutes late: credited on what came before it."""
    _, outputs = fold([click(0, "email"), click(35, "sms"), convert(30)])
    assert [t.channel for t in converted(outputs)[0].touches] == ["email"]


def test_late_events_inside_the_lookback_are_put_at_their_place():
    """A conversion 30 min behind the person's latest event is credited on what came before
    it; an interaction 11 min late lands between the two touches it falls between."""
    journey, outputs = fold([click(0, "email"), click(60, "sms"), convert(30), click(49, "push")])
    assert not any(isinstance(o, TooLate) for o in outputs)
    assert [t.channel for t in converted(outputs)[0].touches] == ["email"]
    assert [t.channel for t in journey.touches] == ["email", "push", "sms"] and journey.conversions == 1


def test_only_events_older_than_the_lookback_are_too_late():
    rules = Rules(lookback_ms=DAY)
    journey, outputs = fold(
        [click(0, "email"), click(0, "sms", at=ts(0) + 2 * DAY), convert(60), click(61, "push")], rules
    )
    assert [(type(o).__name__, o.late_by_ms) for o in outputs if isinstance(o, TooLate)] == [
        ("TooLate", 2 * DAY - 60 * MIN),
        ("TooLate", 2 * DAY - 61 * MIN),
    ]
    assert [t.channel for t in journey.touches] == ["sms"] and journey.conversions == 0


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


# --- expiry: null paths -------------------------------------------------------------


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
    journey, outputs = apply(journey, control("expire", ts(40) + LOOKBACK + EXPIRY_SLACK_MS + 1), RULES)
    assert [o for o in outputs if isinstance(o, NullPath)] == [NullPath(("sms", "display"))]
    assert journey == Journey()


def test_expire_after_a_conversion_with_no_later_touch_is_no_null_path():
    journey, _ = fold([click(0), convert(10)])
    journey, outputs = apply(journey, control("expire", ts(10) + LOOKBACK + EXPIRY_SLACK_MS + 1), RULES)
    assert outputs == [SessionClosed(Touchpoint(ts(0), "email", "i0"), ts(0), 1, "expired")]
    assert journey == Journey()


def test_expire_too_early_and_close_idle_events():
    journey, _ = fold([click(0)])
    # the sweeper's expire allows the slack: a journey idle for the lookback alone stays
    assert apply(journey, control("expire", ts(0) + LOOKBACK + EXPIRY_SLACK_MS), RULES) == (journey, [])
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
