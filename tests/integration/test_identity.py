"""Identity stitching on the real pipeline: anonymous journeys merge into the customer's."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from stream.kafka_io import event_record, produce
from stream.runner import metric
from stream.topics import RAW
from tests.batch_oracle import oracle_lines
from tests.integration.test_pipeline import HOUR, MIN, T0, values

pytestmark = pytest.mark.integration


def anon(event_id: str, anonymous_id: str, ts: int, channel: str) -> dict:
    return {
        "event_id": event_id,
        "type": "interaction",
        "ts": ts,
        "anonymous_id": anonymous_id,
        "channel": channel,
    }


def identify(event_id: str, anonymous_id: str, customer_id: str, ts: int) -> dict:
    return {
        "event_id": event_id,
        "type": "identify",
        "ts": ts,
        "anonymous_id": anonymous_id,
        "customer_id": customer_id,
    }


def purchase(event_id: str, customer_id: str, ts: int) -> dict:
    return {
        "event_id": event_id,
        "type": "conversion",
        "ts": ts,
        "customer_id": customer_id,
        "conversion": "purchase",
        "value": 90.0,
        "currency": "EUR",
    }


def test_anonymous_devices_merge_into_the_customer_exactly_once(
    make_settings, start_worker, tmp_path
) -> None:
    """Two devices (a-1: paid_search then email; a-2: display) browse anonymously; both are
    identified as c-1 (a-1's identify twice, once replayed with a new event id); c-1 buys:
    the purchase is credited on all three anonymous touches and c-1's own direct visit, in
    time order, each once. a-1 identified as another customer later is a conflict."""
    settings = make_settings()
    start_worker(settings)
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.topic(RAW)
    browsing = [
        anon("t1", "a-1", T0, "paid_search"),
        anon("t2", "a-2", T0 + HOUR, "display"),
        anon("t3", "a-1", T0 + 2 * HOUR, "email"),
    ]
    later = [
        {
            "event_id": "t4",
            "type": "interaction",
            "ts": T0 + 3 * HOUR,
            "customer_id": "c-1",
            "channel": "direct",
        },
        identify("id1", "a-1", "c-1", T0 + 3 * HOUR + MIN),
        identify("id2", "a-2", "c-1", T0 + 3 * HOUR + 2 * MIN),
        identify("id3", "a-1", "c-1", T0 + 3 * HOUR + 3 * MIN),  # the same link again
        purchase("p1", "c-1", T0 + 4 * HOUR),
    ]
    # keyed by another customer, it travels another raw partition: sent once c-1's are in
    conflicting = identify("id4", "a-1", "c-9", T0 + 3 * HOUR + 4 * MIN)
    asyncio.run(produce(bootstrap, raw, [event_record(e) for e in browsing]))
    deadline = time.monotonic() + 30  # the anonymous browsing is applied before anyone identifies
    while metric(settings, 'touchstream_batch_size_sum{agent="journeys"}') < len(browsing):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    asyncio.run(produce(bootstrap, raw, [event_record(e) for e in later]))

    [doc] = values(bootstrap, settings.topic("attribution.conversions"), count=1)
    asyncio.run(produce(bootstrap, raw, [event_record(conflicting)]))
    assert doc["person_id"] == "c-1"
    assert [(t["session_id"], t["channel"]) for t in doc["touchpoints"]] == [
        ("t1", "paid_search"),
        ("t2", "display"),
        ("t3", "email"),
        ("t4", "direct"),
    ]
    assert doc["models"]["linear"]["values"] == [22.5, 22.5, 22.5, 22.5]
    conflicts = values(bootstrap, settings.topic("touchpoints.identity_conflicts"), count=1)
    assert [(c["anonymous_id"], c["customer_id"], c["mapped_to"]) for c in conflicts] == [
        ("a-1", "c-9", "c-1")
    ]
    assert metric(settings, "touchstream_identity_conflicts_total") == 1

    batch = oracle_lines(settings, [*browsing, *later, conflicting], tmp_path)
    assert batch == [orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)]
