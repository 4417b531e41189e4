"""The one routing rule of the stream's ingest and the batch mode (stream.core.routing)."""

from __future__ import annotations

from stream.core.records import Event
from stream.core.routing import Conflict, needs, route
from stream.core.validation import Rejection

T = 1_772_359_200_000


def identify(anon: str, customer: str) -> Event:
    return Event("id-1", "identify", T, customer, anonymous_id=anon, customer_id=customer)


def browse(anon: str, customer: str | None = None) -> Event:
    return Event(
        "i-1", "interaction", T, customer or anon, anonymous_id=anon, customer_id=customer, channel="email"
    )


def revenue(cid: str) -> Event:
    return Event("r-1", "revenue", T, "", conversion_id=cid, value=5.0)


def test_needs_lists_the_lookups_in_event_order() -> None:
    events = [identify("a1", "c1"), browse("a2"), browse("a3", "c3"), revenue("o1"), identify("a1", "c2")]
    found = needs(events)
    assert found.claims == [("a1", "c1"), ("a1", "c2")]
    assert found.anonymous_ids == ["a2"]  # a3 carries its customer id: nothing to look up
    assert found.conversion_ids == ["o1"]


def test_an_identify_applies_when_its_claim_holds_and_conflicts_otherwise() -> None:
    assert route(identify("a1", "c1"), "c1", {}, {}) == identify("a1", "c1")
    conflict = route(identify("a1", "c2"), "c1", {}, {})
    assert conflict == Conflict(identify("a1", "c2"), "c1")
    assert isinstance(conflict, Conflict) and conflict.error == "anonymous id already identified as 'c1'"


def test_anonymous_events_go_to_their_customer_once_identified() -> None:
    assert route(browse("a1"), None, {"a1": "c1"}, {}).person_id == "c1"  # type: ignore[union-attr]
    assert route(browse("a2"), None, {"a1": "c1"}, {}) == browse("a2")  # not identified: stays
    # an event that names its customer keeps it, whatever its anonymous id maps to
    assert route(browse("a1", "c9"), None, {"a1": "c1"}, {}).person_id == "c9"  # type: ignore[union-attr]


def test_revenue_without_a_person_goes_to_its_conversion_or_the_dlq() -> None:
    assert route(revenue("o1"), None, {}, {"o1": "c1"}).person_id == "c1"  # type: ignore[union-attr]
    rejected = route(revenue("o2"), None, {}, {"o1": "c1"})
    assert isinstance(rejected, Rejection) and rejected.reason_code == "unknown_conversion"
    assert "'o2'" in rejected.error
