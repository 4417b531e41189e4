"""Identity stitching on the real pipeline: anonymous journeys merge into the customer's."""

from __future__ import annotations

import orjson
import pytest

from stream.core.topics import CONVERSIONS, IDENTITY_CONFLICTS, RAW
from stream.devtools.runner import metric
from tests.support import redis_target
from tests.support.events import DAY, HOUR, MIN, T0, anon, conversion, identify, interaction
from tests.support.kafka import publish, values
from tests.support.oracle import oracle_lines
from tests.support.redis_target import SINGLE_AND_CLUSTER
from tests.support.waiting import wait_drained, wait_until

pytestmark = pytest.mark.integration


@SINGLE_AND_CLUSTER
def test_anonymous_devices_merge_into_the_customer_exactly_once(
    make_settings, start_worker, tmp_path
) -> None:
    """Two devices (a-1: paid_search then email; a-2: display) browse anonymously; both are
    identified as c-1 (a-1's identify twice, once replayed with a new event id); c-1 buys:
    the purchase is credited on all three anonymous touches and c-1's own direct visit, in
    time order, each once. a-1 identified as another customer later is a conflict."""
    settings = make_settings(identity_ttl_ms=40 * DAY, conversion_ttl_ms=700 * DAY)
    start_worker(settings)
    raw = settings.topic(RAW)
    browsing = [
        anon("t1", "a-1", T0, "paid_search"),
        anon("t2", "a-2", T0 + HOUR, "display"),
        anon("t3", "a-1", T0 + 2 * HOUR, "email"),
    ]
    later = [
        interaction("t4", T0 + 3 * HOUR, "direct", customer_id="c-1"),
        identify("id1", "a-1", "c-1", T0 + 3 * HOUR + MIN),
        identify("id2", "a-2", "c-1", T0 + 3 * HOUR + 2 * MIN),
        identify("id3", "a-1", "c-1", T0 + 3 * HOUR + 3 * MIN),  # the same link again
        conversion("p1", T0 + 4 * HOUR, "c-1", "purchase", 90.0),
    ]
    # keyed by another customer, it travels another raw partition: sent once c-1's are in
    conflicting = identify("id4", "a-1", "c-9", T0 + 3 * HOUR + 4 * MIN)
    publish(settings, raw, browsing)
    wait_until(  # the anonymous browsing is applied before anyone identifies
        lambda: metric(settings, 'touchstream_batch_size_sum{stage="journeys"}') >= len(browsing),
        timeout=30,
        what="anonymous browsing applied",
    )
    publish(settings, raw, later)
    wait_drained(settings)

    [doc] = values(settings, settings.topic(CONVERSIONS))
    publish(settings, raw, [conflicting])
    assert doc["person_id"] == "c-1"
    assert [(t["session_id"], t["channel"]) for t in doc["touchpoints"]] == [
        ("t1", "paid_search"),
        ("t2", "display"),
        ("t3", "email"),
        ("t4", "direct"),
    ]
    assert doc["models"]["linear"]["values"] == [22.5, 22.5, 22.5, 22.5]
    wait_drained(settings)
    conflicts = values(settings, settings.topic(IDENTITY_CONFLICTS))
    assert [(c["anonymous_id"], c["customer_id"], c["mapped_to"]) for c in conflicts] == [
        ("a-1", "c-9", "c-1")
    ]
    assert metric(settings, "touchstream_identity_conflicts_total") == 1

    batch = oracle_lines(settings, [*browsing, *later, conflicting], tmp_path)
    assert batch == [orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)]

    # each kept as long as its own setting says
    keys = redis_target.keys(settings)
    with redis_target.client(settings) as client:
        mapped = client.pttl(keys.identity("a-1"))
        record = client.pttl(keys.person("c-1", f"conv:{doc['conversion']['conversion_id']}"))
    assert 39 * DAY < mapped <= 40 * DAY and 699 * DAY < record <= 700 * DAY
