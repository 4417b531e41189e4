"""A batch of persons (stream.core.batch): an identify merges what the same batch did first."""

from __future__ import annotations

from stream.attribution import HEURISTIC
from stream.core.batch import step_batch
from stream.core.config import MINUTE_MS, Config
from stream.core.person import PersonState, Positioned
from stream.core.records import Event
from stream.core.topics import PERSONS

T0 = 1_772_359_200_000
CONFIG = Config(models=HEURISTIC)


def browse(n: int, person: str, minutes: int, channel: str) -> Event:
    return Event(
        f"i{n}", "interaction", T0 + minutes * MINUTE_MS, person, anonymous_id=person, channel=channel
    )


def test_the_anonymous_persons_events_of_the_batch_are_merged_not_forwarded() -> None:
    identify = Event("id", "identify", T0 + 60 * MINUTE_MS, "c", anonymous_id="a", customer_id="c")
    purchase = Event(
        "p", "conversion", T0 + 70 * MINUTE_MS, "c", customer_id="c", conversion="purchase", value=10.0
    )
    events = {
        # the customer's partition first in the batch: the identify, then the purchase
        "c": [Positioned("persons:1", 10, identify), Positioned("persons:1", 11, purchase)],
        # the anonymous device's events of the same batch, from another partition
        "a": [
            Positioned("persons:2", 5, browse(1, "a", 0, "email")),
            Positioned("persons:2", 6, browse(2, "a", 45, "display")),
        ],
    }
    states = {"c": PersonState(others={"a": PersonState()}), "a": PersonState()}
    results = step_batch(states, events, CONFIG)
    customer, anonymous = results["c"], results["a"]
    assert [t.channel for t in customer.state.journey.touches] == ["email", "display"]
    assert customer.state.journey.merged == ("a",)
    # the purchase is credited on both anonymous touches at once: no correction needed
    assert [m.topic for m in customer.outbox["persons:1@11"]].count("attribution.conversions") == 1
    # the anonymous person is written once, as the tombstone of what its events left
    assert anonymous.changed and anonymous.state.journey.merged_into == "c"
    assert anonymous.state.fence.offsets == {"persons:2": 6}
    assert not any(m.topic == PERSONS for ms in anonymous.outbox.values() for m in ms)
    assert set(customer.tombstones) == {"a"}


def test_a_second_customer_claiming_the_same_anonymous_person_does_not_merge_it_again() -> None:
    events = {
        "a": [Positioned("persons:2", 5, browse(1, "a", 0, "email"))],
        "c1": [
            Positioned(
                "persons:1",
                1,
                Event("x1", "identify", T0 + MINUTE_MS, "c1", anonymous_id="a", customer_id="c1"),
            )
        ],
        "c2": [
            Positioned(
                "persons:3",
                1,
                Event("x2", "identify", T0 + MINUTE_MS, "c2", anonymous_id="a", customer_id="c2"),
            )
        ],
    }
    states = {pid: PersonState(others={"a": PersonState()}) for pid in ("c1", "c2")} | {"a": PersonState()}
    results = step_batch(states, events, CONFIG)
    merged = [pid for pid in ("c1", "c2") if results[pid].state.journey.touches]
    assert len(merged) == 1
    assert results["a"].state.journey.merged_into == merged[0]
