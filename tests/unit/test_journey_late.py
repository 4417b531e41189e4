"""Late arrivals and identity merges: both re-sessionise the
journey and correct a conversion already credited.

Builders: tests/support/journeys.py.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.core.apply import apply
from stream.core.config import Rules
from stream.core.journey import Corrected, sessionise
from stream.core.late import merge
from tests.support.events import MIN, T0
from tests.support.journeys import EMPTY, RULES, TIMEOUT, click, convert, converted, fold, ts

# --- late arrivals ----------------------------------------------------------------------


def test_a_late_interaction_merges_two_sessions_and_corrects_the_conversion():
    """email at 0 and at 31 (31 min apart: two sessions), a conversion at 32 credited on
    both; then a late email at 25 (7 min behind): 0, 25, 31 are
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
    """Property in small: any arrival order ends with the touches
    `sessionise` gives for the time-sorted interactions."""
    events = [click(0), click(3, "sms"), click(5), click(8), click(9, "sms")]
    for order in ([0, 1, 2, 3, 4], [1, 0, 2, 4, 3], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1]):
        journey, _ = fold([events[i] for i in order])
        assert journey.touches == tuple(sessionise(events, TIMEOUT)), order


@given(
    st.lists(st.tuples(st.integers(0, 10 * MIN), st.sampled_from(["email", "sms"])), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_any_arrival_order_gives_the_sorted_sessions(raw, rnd):
    """Events up to 16 hours apart, in any arrival order: the final touches are `sessionise`
    of the interactions (ties at equal timestamps are broken by event id)."""
    events = [
        click(0, channel, at=T0 + ms * 100 + i, event_id=f"e{i}") for i, (ms, channel) in enumerate(raw)
    ]
    arrival = events[:]
    rnd.shuffle(arrival)
    journey, _ = fold(arrival)
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
    identified: the conversion is re-credited on both, as revision 1."""
    customer, _ = fold([click(30, "display"), convert(31)])
    device, _ = fold([click(25, "email", event_id="d")])
    _, outputs = merge(customer, device, "a-1", RULES)
    [correction] = outputs
    assert isinstance(correction, Corrected) and correction.revision == 1
    assert [t.channel for t in correction.attribution_input.touches] == ["email", "display"]


def test_an_interaction_both_journeys_hold_counts_once():
    """A device's email at 40 was applied to the anonymous journey (ingested before the
    identify claimed the device) and, ingested again after a crash, to the customer's too:
    merged, it is one interaction of one session, its cost counted once."""
    device, _ = fold([click(0), click(40, "sms", event_id="twice", cost=0.6)])
    customer, _ = fold([click(39, "sms", event_id="c"), click(40, "sms", event_id="twice", cost=0.6)])
    merged, _ = merge(customer, device, "a-1", RULES)
    assert [(t.channel, t.cost) for t in merged.touches] == [("email", 0.0), ("sms", 0.6)]
    assert [t.session_id for t in merged.tail] == ["i0", "c", "twice"]


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from(["email", "sms", "push"])), min_size=1, max_size=10
    ),
    st.randoms(use_true_random=False),
    st.integers(1, 3),
)
def test_the_tail_never_describes_more_sessions_than_the_journey_keeps(raw, rnd, cap):
    """With a tiny journey cap and any arrival order, the unsettled sessions
    never outnumber the kept touches, and the cap holds."""
    events = [click(minute, channel, event_id=f"e{i}") for i, (minute, channel) in enumerate(raw)]
    rnd.shuffle(events)
    journey = EMPTY
    for event in events:
        journey, _ = apply(journey, event, Rules(journey_cap=cap))
        assert journey.tail_touches <= len(journey.touches) <= cap
