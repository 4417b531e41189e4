"""The test helpers hold what the tests rely on: `wait_until` polls and times out, the
event builders make events that validation accepts and the input schema allows."""

from __future__ import annotations

import itertools

import orjson
import pytest

from stream.core.config import Limits
from stream.core.records import Event
from stream.core.validation import validate
from tests.support.events import DAY, HOUR, MIN, SCRIPT, T0, anon, conversion, identify, interaction, revenue
from tests.support.schemas import schema_of_topic
from tests.support.schemas import validate as validate_schema
from tests.support.waiting import wait_until

BUILT = [
    *SCRIPT,
    anon("t1", "a-1", T0, "paid_search"),
    identify("id1", "a-1", "c-1", T0 + MIN),
    conversion("p1", T0 + HOUR, "c-1", "purchase", 90.0),
    conversion("m-3", T0 + HOUR, "zz", "purchase", 50.0, currency=None),
    interaction("m-1", T0, "email", customer_id="zz", anonymous_id="a-9", campaign="spring"),
    revenue("crm-1", T0 + 60 * DAY, "lead-erin-3", 5000.0),
    revenue("crm-2", T0 + 61 * DAY, "lead-erin-3", 1000.0, customer_id="erin"),
]


def test_wait_until_returns_the_first_true_result() -> None:
    calls = itertools.count()
    assert wait_until(lambda: next(calls) >= 3 and "done", timeout=5, interval=0) == "done"


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match=r"the moon: not within 0\.1 s"):
        wait_until(lambda: False, timeout=0.1, what="the moon", interval=0.01)


@pytest.mark.parametrize("event", BUILT, ids=[e["event_id"] for e in BUILT])
def test_built_events_are_valid_input(event: dict) -> None:
    validate_schema("input-event", event)
    assert isinstance(validate(orjson.dumps(event), Limits(), T0 + 90 * DAY), Event)


def test_topic_schemas_are_found_under_a_prefix() -> None:
    assert schema_of_topic("test-1a2b.attribution.conversions") == "conversion"
    assert schema_of_topic("touchpoints.identity_conflicts") == "identity-conflict"
