"""Exact whatever the partitions: journeys that start anonymous and continue logged in.

250 persons of the multi-device scenario (`stream.devtools.devices`) over 8 partitions:
each person's anonymous device and known customer id are two keys, so two partitions.
The customers' events are published first and fully processed; the anonymous devices'
events come after (a lagging producer), so every one of them arrives after the identify,
the conversions and the customer's later events that it precedes in time. The latest
revision of every conversion must equal `touchstream attribute --events` on the
time-sorted events, nothing goes to the DLQ, and the journeys in Redis are the batch
mode's — at batch size 1 and 1000.
"""

from __future__ import annotations

import time

import orjson
import pytest

from stream.core.config import DAY_MS
from stream.core.topics import CONVERSIONS, DLQ, RAW
from stream.devtools import devices
from stream.offline.replay import EventReplay
from tests.support.kafka import publish, values
from tests.support.oracle import oracle_lines
from tests.support.revisions import journeys_differing, latest, stored_journeys
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_two_devices_over_eight_partitions_with_a_lagging_producer(
    make_settings, start_worker, tmp_path, batch_size
) -> None:
    # no sweeps: a wall-clock close_idle would close sessions the batch mode keeps open
    settings = make_settings(partitions=8, batch_size=batch_size, sweep_interval_ms=3_600_000)
    now = int(time.time() * 1000)
    events = devices.persons(250, seed=21, start_ms=now - 100 * DAY_MS)
    known, anonymous = devices.by_device(devices.publication_order(events, seed=22))
    start_worker(settings)
    publish(settings, settings.topic(RAW), known)
    wait_drained(settings, timeout=300)
    publish(settings, settings.topic(RAW), anonymous)
    wait_drained(settings, timeout=300)

    docs = values(settings, settings.topic(CONVERSIONS))
    assert sum(d["revision"] > 0 for d in docs) > 100  # the late devices did re-credit conversions
    got = latest(docs)
    expected = latest(oracle_lines(settings, events, tmp_path))  # file order = time order
    assert len(expected) > 300
    assert sorted(got) == sorted(expected)
    assert [k for k in expected if got[k] != expected[k]] == []
    assert values(settings, settings.topic(DLQ)) == []

    replay = EventReplay(settings.config(), settings.limits(), now, settings.partitions)
    list(replay.run(orjson.dumps(e) for e in events))
    assert replay.rejected == []
    assert (
        journeys_differing(
            {p: s.journey for p, s in replay.states.items()},
            stored_journeys(settings.redis_url, replay.states),
        )
        == []
    )
