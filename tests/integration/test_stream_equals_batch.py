"""Streaming equals batch (DESIGN.md §7).

Heuristic models: the worker's attribution of every conversion is byte-identical to
`touchstream attribute --events` over the same events, whatever the batch size. Data-driven
models: the stream's snapshot after all events (journeys expired by event time included)
equals the batch's, and a conversion that names a snapshot has that snapshot's shares.
"""

from __future__ import annotations

import contextlib
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.core.config import DAY_MS
from stream.core.topics import CONVERSIONS, MODELS, RAW
from stream.devtools.simulate import generate
from tests.support.events import END_MS, conversion, interaction
from tests.support.kafka import publish, read_all, values
from tests.support.oracle import attribute_cli, write_jsonl
from tests.support.waiting import wait_drained, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def events_file(tmp_path_factory) -> tuple[list[dict], Path]:
    events = list(generate(250, seed=11, end_ms=END_MS, span_ms=120 * DAY_MS))
    return events, write_jsonl(tmp_path_factory.mktemp("batch") / "events.jsonl", events)


def refresh_model(settings) -> list[dict[str, Any]]:
    """The worker's on-demand model refresh: the snapshot it has now, as its
    `attribution.models` values (`[]` before any)."""
    url = f"http://127.0.0.1:{settings.web_port}/models/refresh"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as page:
        return orjson.loads(page.read())


def refreshed_model(settings, want: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The worker's model refresh, polled until it reaches snapshot `want` (the last one
    seen when it does not: the caller's comparison shows how it differs)."""
    seen: list[list[dict[str, Any]]] = []

    def reached() -> bool:
        seen.append(refresh_model(settings))
        return bool(seen[-1]) and seen[-1][0]["snapshot_id"] == want

    with contextlib.suppress(TimeoutError):
        wait_until(reached, timeout, f"model snapshot {want}", interval=1)
    return seen[-1]


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_stream_equals_batch(make_settings, start_worker, events_file, tmp_path, batch_size) -> None:
    events, path = events_file
    settings = make_settings(
        batch_size=batch_size,
        lookback_ms=30 * DAY_MS,
        sweep_interval_ms=1000,
        model_refresh_ms=3_600_000,
        web_actions=True,  # POST /models/refresh
    )
    model_file = tmp_path / "model.json"
    expected = sorted(
        attribute_cli(settings, "--events", str(path), "--model-out", str(model_file)).splitlines()
    )
    batch_model = [orjson.loads(line) for line in model_file.read_bytes().splitlines()]  # JSON lines
    batch_id = batch_model[0]["snapshot_id"]
    conversions = sum(e["type"] == "conversion" for e in events)
    assert len(expected) == conversions > 20
    assert batch_model[0]["nulls"] > 50 and batch_model[0]["conversions"] > 20  # expiry made null paths

    start_worker(settings)
    publish(settings, settings.topic(RAW), events)
    wait_drained(settings, timeout=180)
    streamed = read_all(settings, settings.topic(CONVERSIONS))
    by_id = {orjson.loads(v)["attribution_id"]: orjson.loads(v) for v in expected}
    for msg in streamed:  # readable failures: the differing fields of the first differing conversion
        doc = orjson.loads(msg.value)
        want = by_id[doc["attribution_id"]]
        assert {k: v for k, v in doc.items() if v != want[k]} == {}, doc["attribution_id"]
    assert sorted(m.value for m in streamed) == expected

    # the model after all events: journeys idle for the lookback expire as null paths
    assert refreshed_model(settings, batch_id) == batch_model

    # a conversion after the refresh names the snapshot and carries its shares
    marker = [
        interaction("m-1", END_MS, "email", customer_id="zz"),
        interaction("m-2", END_MS + 1, "paid_search", customer_id="zz"),
        conversion("m-3", END_MS + 2, "zz", "purchase", 50.0, currency=None),
    ]
    publish(settings, settings.topic(RAW), marker)
    wait_drained(settings)
    streamed = read_all(settings, settings.topic(CONVERSIONS))
    assert len(streamed) == conversions + 1
    ours = [orjson.loads(m.value) for m in streamed if orjson.loads(m.value)["attribution_id"] == "m-3"]
    assert len(ours) == 1 and ours[0]["model_snapshot"] == batch_id
    marker_file = write_jsonl(tmp_path / "marker.jsonl", marker)
    offline = orjson.loads(
        attribute_cli(settings, "--events", str(marker_file), "--snapshot", str(model_file))
    )
    assert ours[0] == offline
    # every snapshot the polling saw change was published whole (schema-checked), the last one
    # is the batch model's (earlier ones: expiry events still on their way when polled)
    published = values(settings, settings.topic(MODELS))
    snapshots = list(dict.fromkeys(m["snapshot_id"] for m in published))
    assert snapshots[-1] == batch_id
    for snapshot_id in snapshots:
        assert sorted(m["model"] for m in published if m["snapshot_id"] == snapshot_id) == [
            "markov",
            "shapley",
            "shapley_ordered",
        ]
