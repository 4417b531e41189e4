"""End to end on a real broker, a real redis-server and a real `touchstream worker` process."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import orjson
import pytest
import redis

from stream.adapters.kafka.topics import persons_topic
from stream.adapters.redis.keys import key as person_key
from stream.core.partitioning import key_hash
from stream.core.records import Touchpoint
from stream.core.state_codec import decode_state
from stream.core.topics import CONVERSIONS, CREDITS, DLQ, RAW, SESSIONS
from stream.devtools.runner import metric
from tests.support import redis_target
from tests.support.events import DAY, HOUR, MIN, SCRIPT, SCRIPT_CONVERSIONS, T0, convert, touch
from tests.support.kafka import by_attribution_id, publish, read_all, rewind_group, values
from tests.support.redis_target import SINGLE_AND_CLUSTER
from tests.support.settings import free_port
from tests.support.waiting import wait_drained, wait_until

pytestmark = pytest.mark.integration

EXPECTED_SHARES = {
    "alice": {
        "first_touch": [1.0, 0.0, 0.0],
        "last_touch": [0.0, 0.0, 1.0],
        "last_non_direct": [0.0, 1.0, 0.0],
        "linear": [1 / 3, 1 / 3, 1 / 3],
        "position_based": [0.4, 0.2, 0.4],
    },
    "bob": {name: [1.0] for name in ("first_touch", "last_touch", "last_non_direct", "linear", "time_decay")},
    "dave": {
        "first_touch": [1.0, 0.0],
        "last_touch": [0.0, 1.0],
        "linear": [0.5, 0.5],
        "position_based": [0.5, 0.5],
    },
}


@SINGLE_AND_CLUSTER
def test_scripted_journeys_are_attributed_exactly(make_settings, start_worker) -> None:
    settings = make_settings()
    start_worker(settings)
    publish(settings, settings.topic(RAW), SCRIPT)
    wait_drained(settings)

    out = values(settings, settings.topic(CONVERSIONS))
    by_person = {doc["person_id"]: doc for doc in out}
    assert sorted(by_person) == ["alice", "bob", "carol", "dave"] and len(out) == 4

    for pid, expected in EXPECTED_SHARES.items():
        for model, shares in expected.items():
            assert by_person[pid]["models"][model]["shares"] == pytest.approx(shares, abs=1e-12), (pid, model)
    alice = by_person["alice"]
    assert [t["channel"] for t in alice["touchpoints"]] == ["paid_search", "email", "direct"]
    assert alice["touchpoints"][0]["cost"] == 2.0  # both clicks of the session
    assert alice["models"]["linear"]["values"] == pytest.approx([100 / 3] * 3)
    assert alice["attribution_id"] == "alice-5" and alice["conversion"]["conversion_id"] == "purchase-alice-5"
    carol = by_person["carol"]
    assert carol["unattributed"] is True and carol["touchpoints"] == []

    credits = values(settings, settings.topic(CREDITS))
    per_model = Counter((c["attribution_id"], c["model"]) for c in credits)
    assert per_model[("alice-5", "linear")] == 3 and per_model[("carol-1", "linear")] == 1
    unattributed = [c for c in credits if c["attribution_id"] == "carol-1"]
    assert {c["channel"] for c in unattributed} == {"(unattributed)"}
    assert all(c["value"] == 40.0 and c["share"] == 1.0 for c in unattributed)

    sessions = values(settings, settings.topic(SESSIONS))
    closed = sorted(
        (s["person_id"], s["session_id"], s["interactions"])
        for s in sessions
        if s["closed_by"] == "next_session"
    )
    assert closed == [("alice", "alice-1", 2), ("alice", "alice-3", 1), ("dave", "dave-1", 1)]

    with redis_target.client(settings) as client:
        stored = decode_state(client.get(redis_target.keys(settings).person("alice", "state"))).journey
    assert stored.touches == (
        Touchpoint(T0, "paid_search", "alice-1", "google", "cpc", "brand", cost=2.0),
        Touchpoint(T0 + 2 * HOUR, "email", "alice-3", "newsletter", None, "spring"),
        Touchpoint(T0 + DAY, "direct", "alice-4"),
    )
    assert (stored.session_last_ts, stored.session_interactions, stored.conversions) == (T0 + DAY, 1, 1)

    # what operators read off /metrics (README, Operations): events in by type, and Faust's
    # end and committed offsets per partition, whose difference is the lag (none: drained)
    interactions = sum(e["type"] == "interaction" for e in SCRIPT)
    assert metric(settings, 'touchstream_events_in_total{type="interaction"}') == interactions
    ends = metric(settings, "faust_topic_partition_end_offset")
    assert ends >= len(SCRIPT) and metric(settings, "faust_topic_partition_offset_commited") == ends
    assert metric(settings, "faust_consumer_commit_latency_count") > 0
    assert metric(settings, 'faust_assignment_operations_total{operation="completed"}') >= 1
    assert metric(settings, "faust_rebalance_done_latency_count") >= 1
    # conversion -> attribution latency, in seconds (Prometheus' base unit)
    attributed = len(SCRIPT_CONVERSIONS)
    assert metric(settings, "touchstream_latency_seconds_count") == attributed
    assert 0 < metric(settings, "touchstream_latency_seconds_sum") < 60 * attributed
    assert metric(settings, 'touchstream_batch_size_sum{stage="journeys"}') >= len(SCRIPT)
    # on a cluster, every batch waited for the replicas of its writes (none to wait for on one server)
    batches = metric(settings, 'touchstream_batch_size_count{stage="journeys"}')
    replicated = metric(settings, 'touchstream_redis_call_seconds_count{operation="replicate"}')
    assert replicated == (batches if settings.redis_cluster else 0) and batches > 0


MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "not_json"),
    (b"\xff\xfe garbage", "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (
        orjson.dumps(
            {"event_id": 7, "type": "interaction", "ts": T0, "customer_id": "x", "channel": "email"}
        ),
        "wrong_type",
    ),
    (
        orjson.dumps({"type": "interaction", "ts": T0, "customer_id": "x", "channel": "email"}),
        "missing_field",
    ),
    (
        orjson.dumps(
            {
                "event_id": "m-1",
                "type": "interaction",
                "ts": "yesterday",
                "customer_id": "x",
                "channel": "email",
            }
        ),
        "bad_ts",
    ),
    (orjson.dumps({"event_id": "m-2", "type": "purchase!", "ts": T0, "customer_id": "x"}), "unknown_type"),
    (
        orjson.dumps(
            {
                "event_id": "m-3",
                "type": "interaction",
                "ts": T0,
                "customer_id": "x",
                "channel": "email",
                "context": {"blob": "x" * 70_000},
            }
        ),
        "too_large",
    ),
    (
        orjson.dumps(
            {
                "event_id": "m-4",
                "type": "interaction",
                "ts": 4_102_444_800_000,
                "customer_id": "x",
                "channel": "email",
            }
        ),
        "ts_out_of_range",
    ),
]


def test_malformed_values_go_to_the_dlq_and_good_ones_still_flow(make_settings, start_worker) -> None:
    settings = make_settings()
    start_worker(settings)
    good = [orjson.dumps(e) for e in SCRIPT[:5]]  # alice's journey
    records: list[tuple[bytes | None, bytes]] = []
    for i, (raw, _reason) in enumerate(MALFORMED):
        records.append((None if i % 2 else b"alice", raw))
        if i < len(good):
            records.append((b"alice", good[i]))
    publish(settings, settings.topic(RAW), records)
    wait_drained(settings)

    dlq = values(settings, settings.topic(DLQ))
    assert sorted(d["reason_code"] for d in dlq) == sorted(reason for _, reason in MALFORMED)
    assert all(d["error"] and d["topic"] == settings.topic(RAW) and d["offset"] >= 0 for d in dlq)
    invalid_utf8 = next(d for d in dlq if d["raw_encoding"] == "base64")
    assert invalid_utf8["reason_code"] == "not_json"

    out = values(settings, settings.topic(CONVERSIONS))
    assert [d["attribution_id"] for d in out] == ["alice-5"]
    assert out[0]["models"]["linear"]["shares"] == pytest.approx([1 / 3] * 3)


def _state(settings) -> dict[bytes, Any]:
    client = redis.Redis.from_url(settings.redis_url)
    snapshot = {}
    for key in sorted(client.scan_iter("ts:{p:*")):
        kind = client.type(key)
        snapshot[key] = client.hgetall(key) if kind == b"hash" else client.get(key)
    return snapshot


def test_publishing_twice_and_reprocessing_change_nothing(make_settings, start_worker) -> None:
    settings = make_settings(sweep_interval_ms=3_600_000)  # no sweeps: the persons topic holds the events
    worker = start_worker(settings)
    raw, conversions_topic = settings.topic(RAW), settings.topic(CONVERSIONS)
    publish(settings, raw, SCRIPT)
    wait_drained(settings)
    first = values(settings, conversions_topic)
    assert len(first) == 4
    state = _state(settings)
    publish(settings, raw, SCRIPT)  # same event ids, new offsets: dedup
    marker = [touch("zed", 1, T0, "email"), convert("zed", 2, T0 + MIN, "lead", 0.0)]
    publish(settings, raw, marker)
    wait_drained(settings)  # the duplicate copies (and the marker) have gone through the worker
    after = values(settings, conversions_topic)
    assert sorted(d["attribution_id"] for d in after) == [*SCRIPT_CONVERSIONS, "zed-2"]
    state_after = {k: v for k, v in _state(settings).items() if b"zed" not in k}
    assert _without_versions(state_after) == _without_versions(state)
    assert metric(settings, "touchstream_duplicate_events_total") == len(SCRIPT)

    # reprocess everything from offset 0: the stored fence refuses every applied offset;
    # outputs of the last write per person are re-emitted byte-identical, nothing else changes
    worker.stop()
    rewind_group(settings, settings.app_id, [raw, persons_topic(settings)], settings.partitions)
    start_worker(settings)
    publish(settings, raw, [touch("zed", 3, T0 + 2 * MIN, "email")])
    wait_drained(settings)
    by_id = by_attribution_id(read_all(settings, conversions_topic))
    assert sorted(by_id) == [*SCRIPT_CONVERSIONS, "zed-2"]
    assert all(len(variants) == 1 for variants in by_id.values())  # duplicates are byte-identical
    final = {k: v for k, v in _state(settings).items() if b"zed" not in k}
    assert _without_versions(final) == _without_versions(state)
    # the persons topic was re-read from offset 0: every earlier copy was refused by the fence
    assert metric(settings, "touchstream_replayed_events_total") == 2 * len(SCRIPT) + len(marker)


def _without_versions(state: dict[bytes, Any]) -> dict[bytes, Any]:
    """Fence offsets and versions move (duplicate copies have new offsets); nothing else may."""
    kept = {}
    for k, val in state.items():
        if k.endswith(b":state"):
            person = decode_state(val)
            val = (person.journey, person.fence.recent)
        kept[k] = val
    return kept


def test_records_stamped_with_their_event_time_are_kept_and_carry_their_source_time(
    make_settings, start_worker
) -> None:
    """A producer may stamp a record with its event time (a backfill of months ago). Time
    retention goes by the record timestamp, so the topics a worker reads keep the broker's
    append time instead; the person-keyed copy names its raw record's time in `source_ms`.

    Only what must move takes the person-keyed topic. Two workers own a partition each: eve's
    event keyed by eve is applied where it was read; the one a producer keyed by something
    on the other worker's partition is re-keyed to eve's."""
    settings = make_settings(partitions=2)
    workers = [
        start_worker(settings),
        start_worker(dataclasses.replace(settings, worker_id="second", web_port=free_port())),
    ]
    for worker in workers:
        wait_until(
            lambda w=worker: metric(w.settings, "touchstream_owned_partitions") == 1, what="a partition each"
        )
    old = T0 - 200 * DAY  # older than any retention
    elsewhere = next(k for k in (b"k%d" % n for n in range(100)) if key_hash(k) % 2 != key_hash(b"eve") % 2)
    stamped = [
        (b"eve", orjson.dumps(touch("eve", 1, T0, "email")), old),
        (elsewhere, orjson.dumps(touch("eve", 2, T0 + HOUR, "display")), old),
    ]
    publish(settings, settings.topic(RAW), stamped)
    wait_drained(settings)

    raw = {r.key: r for r in read_all(settings, settings.topic(RAW))}
    [copy] = read_all(settings, persons_topic(settings))
    assert copy.key == b"eve" and orjson.loads(copy.value)["event_id"] == "eve-2"
    assert all(r.timestamp_type == 1 and r.timestamp > old + 100 * DAY for r in raw.values())  # LogAppendTime
    assert copy.timestamp_type == 1 and dict(copy.headers)["source_ms"] == b"%d" % raw[elsewhere].timestamp
    journey = decode_state(redis.Redis.from_url(settings.redis_url).get(person_key("eve", "state"))).journey
    assert [t.channel for t in journey.touches] == ["email", "display"]
    # stop one worker and let the other take its partition over before it is stopped too (a
    # worker stopped in the middle of a rebalance logs Faust's fetcher as crashed)
    workers[1].stop()
    wait_until(lambda: metric(settings, "touchstream_owned_partitions") == 2, what="one worker owns all")
