"""End to end on a real broker, a real redis-server and a real `touchstream worker` process."""

from __future__ import annotations

import asyncio
from collections import Counter
from importlib import resources
from typing import Any

import jsonschema
import orjson
import pytest
import redis

from stream.kafka_io import collect, event_record, produce
from stream.records import Touchpoint
from stream.runner import metric
from stream.store import decode_state
from stream.topics import RAW, persons_topic

pytestmark = pytest.mark.integration

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_790_000_000_000  # 2026-09-21T14:13:20Z


def touch(pid: str, n: int, ts: int, channel: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"{pid}-{n}",
        "type": "interaction",
        "ts": ts,
        "customer_id": pid,
        "channel": channel,
        **fields,
    }


def convert(pid: str, n: int, ts: int, kind: str, value: float) -> dict[str, Any]:
    return {
        "event_id": f"{pid}-{n}",
        "type": "conversion",
        "ts": ts,
        "customer_id": pid,
        "conversion": kind,
        "conversion_id": f"{kind}-{pid}-{n}",
        "value": value,
        "currency": "EUR",
    }


SCRIPT = [
    # alice: paid_search twice in one session, email, direct, then a purchase of 100
    touch("alice", 1, T0, "paid_search", source="google", medium="cpc", campaign="brand", cost=1.5),
    touch("alice", 2, T0 + 5 * MIN, "paid_search", source="google", medium="cpc", campaign="brand", cost=0.5),
    touch("alice", 3, T0 + 2 * HOUR, "email", source="newsletter", campaign="spring"),
    touch("alice", 4, T0 + DAY, "direct"),
    convert("alice", 5, T0 + DAY + HOUR, "purchase", 100.0),
    # bob: one organic visit, then a lead
    touch("bob", 1, T0, "organic_search", source="google"),
    convert("bob", 2, T0 + HOUR, "lead", 0.0),
    # carol: converts with no touchpoint at all
    convert("carol", 1, T0, "purchase", 40.0),
    # dave: the same display campaign twice, 31 minutes apart: two sessions
    touch("dave", 1, T0, "display", campaign="retargeting"),
    touch("dave", 2, T0 + 31 * MIN, "display", campaign="retargeting"),
    convert("dave", 3, T0 + 2 * HOUR, "purchase", 10.0),
]

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


def publish(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    asyncio.run(produce(bootstrap, topic, [event_record(e) for e in events]))


def values(bootstrap: str, topic: str, count: int | None = None, timeout: float = 60) -> list[dict[str, Any]]:
    """A topic's values; each one is checked against the JSON Schema of its topic."""
    docs = [
        orjson.loads(m.value) for m in asyncio.run(collect(bootstrap, topic, count=count, timeout=timeout))
    ]
    schema = SCHEMAS[topic.rsplit(".", 1)[-1]]
    for doc in docs:
        jsonschema.validate(doc, schema)
    return docs


def _schema(name: str) -> dict[str, Any]:
    return orjson.loads(resources.files("stream").joinpath(f"schemas/{name}.schema.json").read_bytes())


SCHEMAS = {
    "conversions": _schema("conversion"),
    "credits": _schema("credit"),
    "sessions": _schema("session"),
    "dlq": _schema("dlq"),
    "models": _schema("model"),
    "identity_conflicts": _schema("identity-conflict"),
}


def test_scripted_journeys_are_attributed_exactly(make_settings, start_worker) -> None:
    settings = make_settings()
    start_worker(settings)
    publish(settings.kafka_bootstrap_servers, settings.topic(RAW), SCRIPT)

    out = values(settings.kafka_bootstrap_servers, settings.topic("attribution.conversions"), count=4)
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

    credits = values(settings.kafka_bootstrap_servers, settings.topic("attribution.credits"), count=1)
    per_model = Counter((c["attribution_id"], c["model"]) for c in credits)
    assert per_model[("alice-5", "linear")] == 3 and per_model[("carol-1", "linear")] == 1
    unattributed = [c for c in credits if c["attribution_id"] == "carol-1"]
    assert {c["channel"] for c in unattributed} == {"(unattributed)"}
    assert all(c["value"] == 40.0 and c["share"] == 1.0 for c in unattributed)

    sessions = values(settings.kafka_bootstrap_servers, settings.topic("touchpoints.sessions"), count=3)
    closed = sorted(
        (s["person_id"], s["session_id"], s["interactions"])
        for s in sessions
        if s["closed_by"] == "next_session"
    )
    assert closed == [("alice", "alice-1", 2), ("alice", "alice-3", 1), ("dave", "dave-1", 1)]

    stored = decode_state(redis.Redis.from_url(settings.redis_url).get("ts:{p:alice}:state")).journey
    assert stored.touches == (
        Touchpoint(T0, "paid_search", "alice-1", "google", "cpc", "brand", cost=2.0),
        Touchpoint(T0 + 2 * HOUR, "email", "alice-3", "newsletter", None, "spring"),
        Touchpoint(T0 + DAY, "direct", "alice-4"),
    )
    assert (stored.session_last_ts, stored.session_interactions, stored.conversions) == (T0 + DAY, 1, 1)


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
    asyncio.run(produce(settings.kafka_bootstrap_servers, settings.topic(RAW), records))

    dlq = values(settings.kafka_bootstrap_servers, settings.topic("touchpoints.dlq"), count=len(MALFORMED))
    assert sorted(d["reason_code"] for d in dlq) == sorted(reason for _, reason in MALFORMED)
    assert all(d["error"] and d["topic"] == settings.topic(RAW) and d["offset"] >= 0 for d in dlq)
    invalid_utf8 = next(d for d in dlq if d["raw_encoding"] == "base64")
    assert invalid_utf8["reason_code"] == "not_json"

    out = values(settings.kafka_bootstrap_servers, settings.topic("attribution.conversions"), count=1)
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
    settings = make_settings()
    worker = start_worker(settings)
    bootstrap = settings.kafka_bootstrap_servers
    conversions_topic = settings.topic("attribution.conversions")
    publish(bootstrap, settings.topic(RAW), SCRIPT)
    first = values(bootstrap, conversions_topic, count=4)
    assert len(first) == 4
    state = _state(settings)
    publish(bootstrap, settings.topic(RAW), SCRIPT)  # same event ids, new offsets: dedup
    # drain: wait until the duplicate copies have gone through the worker
    marker = [touch("zed", 1, T0, "email"), convert("zed", 2, T0 + MIN, "lead", 0.0)]
    publish(bootstrap, settings.topic(RAW), marker)
    after = values(bootstrap, conversions_topic, count=5)
    assert sorted(d["attribution_id"] for d in after) == ["alice-5", "bob-2", "carol-1", "dave-3", "zed-2"]
    state_after = {k: v for k, v in _state(settings).items() if b"zed" not in k}
    assert _without_versions(state_after) == _without_versions(state)
    assert metric(settings, "touchstream_duplicate_events_total") == len(SCRIPT)

    # reprocess everything from offset 0: the stored fence refuses every applied offset;
    # outputs of the last write per person are re-emitted byte-identical, nothing else changes
    worker.stop()
    _rewind_group(
        bootstrap, settings.app_id, [settings.topic(RAW), persons_topic(settings)], settings.partitions
    )
    start_worker(settings)
    publish(bootstrap, settings.topic(RAW), [touch("zed", 3, T0 + 2 * MIN, "email")])
    replayed = asyncio.run(collect(bootstrap, conversions_topic, count=5, timeout=60, settle=5))
    by_id: dict[str, set[bytes]] = {}
    for msg in replayed:
        by_id.setdefault(orjson.loads(msg.value)["attribution_id"], set()).add(msg.value)
    assert sorted(by_id) == ["alice-5", "bob-2", "carol-1", "dave-3", "zed-2"]
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


def _rewind_group(bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
    """Commit offset 0 on every partition of `topics` for `group` (its workers are stopped)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
            consumer.assign(tps)
            await consumer.commit({tp: 0 for tp in tps})
        finally:
            await consumer.stop()

    asyncio.run(run())
