"""Streaming equals batch (DESIGN.md §7): the worker's attribution of every conversion is
byte-identical to `touchstream attribute --events` over the same events, whatever the batch size."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import orjson
import pytest

from stream.kafka_io import collect, event_record, produce
from stream.runner import settings_env
from stream.simulate import generate
from stream.topics import RAW

pytestmark = pytest.mark.integration

END_MS = 1_790_000_000_000


@pytest.fixture(scope="module")
def events_file(tmp_path_factory) -> tuple[list[dict], object]:
    events = list(generate(250, seed=11, end_ms=END_MS))
    path = tmp_path_factory.mktemp("batch") / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return events, path


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_stream_equals_batch(make_settings, start_worker, events_file, batch_size) -> None:
    events, path = events_file
    settings = make_settings(batch_size=batch_size, batch_within_ms=100)
    batch = subprocess.run(
        [sys.executable, "-m", "stream.cli", "attribute", "--events", str(path)],
        env=settings_env(settings),
        capture_output=True,
        check=True,
        timeout=120,
    )
    expected = sorted(batch.stdout.splitlines())
    conversions = sum(e["type"] == "conversion" for e in events)
    assert len(expected) == conversions > 20

    start_worker(settings)
    asyncio.run(
        produce(settings.kafka_bootstrap_servers, settings.topic(RAW), [event_record(e) for e in events])
    )
    streamed = asyncio.run(
        collect(
            settings.kafka_bootstrap_servers,
            settings.topic("attribution.conversions"),
            count=conversions,
            timeout=180,
        )
    )
    assert sorted(m.value for m in streamed) == expected
