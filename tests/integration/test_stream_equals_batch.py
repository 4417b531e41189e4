"""Streaming equals batch (DESIGN.md §7).

Heuristic models: the worker's attribution of every conversion is byte-identical to
`touchstream attribute --events` over the same events, whatever the batch size. Data-driven
models: the stream's snapshot after all events (journeys expired by event time included)
equals the batch's, and a conversion that names a snapshot has that snapshot's shares.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.kafka_io import collect, event_record, produce
from stream.simulate import DAY_MS, generate
from stream.topics import RAW
from tests.batch_oracle import attribute_cli
from tests.integration.test_pipeline import values

pytestmark = pytest.mark.integration

END_MS = 1_790_000_000_000


@pytest.fixture(scope="module")
def events_file(tmp_path_factory) -> tuple[list[dict], Path]:
    events = list(generate(250, seed=11, end_ms=END_MS, span_ms=120 * DAY_MS))
    path = tmp_path_factory.mktemp("batch") / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return events, path


def attribute(settings, *args: str) -> bytes:
    return attribute_cli(settings, *args)


def refreshed_model(settings, want: str, timeout: float = 60) -> dict[str, Any]:
    """The worker's on-demand model refresh, polled until it reaches snapshot `want`."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{settings.web_port}/models/refresh", timeout=30
        ) as page:
            doc = orjson.loads(page.read())
        if doc["snapshot_id"] == want or time.monotonic() > deadline:
            return doc
        time.sleep(1)


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_stream_equals_batch(make_settings, start_worker, events_file, tmp_path, batch_size) -> None:
    events, path = events_file
    settings = make_settings(
        batch_size=batch_size,
        lookback_ms=30 * DAY_MS,
        sweep_interval_ms=1000,
        model_refresh_ms=3_600_000,
    )
    model_file = tmp_path / "model.json"
    expected = sorted(attribute(settings, "--events", str(path), "--model-out", str(model_file)).splitlines())
    batch_model = orjson.loads(model_file.read_bytes())
    conversions = sum(e["type"] == "conversion" for e in events)
    assert len(expected) == conversions > 20
    assert batch_model["nulls"] > 50 and batch_model["conversions"] > 20  # expiry made null paths

    start_worker(settings)
    bootstrap = settings.kafka_bootstrap_servers
    asyncio.run(produce(bootstrap, settings.topic(RAW), [event_record(e) for e in events]))
    streamed = asyncio.run(
        collect(bootstrap, settings.topic("attribution.conversions"), count=conversions, timeout=180)
    )
    by_id = {orjson.loads(v)["attribution_id"]: orjson.loads(v) for v in expected}
    for msg in streamed:  # readable failures: the differing fields of the first differing conversion
        doc = orjson.loads(msg.value)
        want = by_id[doc["attribution_id"]]
        assert {k: v for k, v in doc.items() if v != want[k]} == {}, doc["attribution_id"]
    assert sorted(m.value for m in streamed) == expected

    # the model after all events: journeys idle for the lookback expire as null paths
    assert refreshed_model(settings, batch_model["snapshot_id"]) == batch_model

    # a conversion after the refresh names the snapshot and carries its shares
    marker = [
        {"event_id": "m-1", "type": "interaction", "ts": END_MS, "customer_id": "zz", "channel": "email"},
        {
            "event_id": "m-2",
            "type": "interaction",
            "ts": END_MS + 1,
            "customer_id": "zz",
            "channel": "paid_search",
        },
        {
            "event_id": "m-3",
            "type": "conversion",
            "ts": END_MS + 2,
            "customer_id": "zz",
            "conversion": "purchase",
            "value": 50.0,
        },
    ]
    asyncio.run(produce(bootstrap, settings.topic(RAW), [event_record(e) for e in marker]))
    streamed = asyncio.run(
        collect(bootstrap, settings.topic("attribution.conversions"), count=conversions + 1)
    )
    ours = [orjson.loads(m.value) for m in streamed if orjson.loads(m.value)["attribution_id"] == "m-3"]
    assert len(ours) == 1 and ours[0]["model_snapshot"] == batch_model["snapshot_id"]
    marker_file = tmp_path / "marker.jsonl"
    marker_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in marker))
    offline = orjson.loads(attribute(settings, "--events", str(marker_file), "--snapshot", str(model_file)))
    assert ours[0] == offline
    # every snapshot the polling saw change was published whole (schema-checked), the last one
    # is the batch model's (earlier ones: expiry events still on their way when polled)
    published = values(bootstrap, settings.topic("attribution.models"))
    snapshots = list(dict.fromkeys(m["snapshot_id"] for m in published))
    assert snapshots[-1] == batch_model["snapshot_id"]
    for snapshot_id in snapshots:
        assert sorted(m["model"] for m in published if m["snapshot_id"] == snapshot_id) == [
            "markov",
            "shapley",
        ]
