"""Operations under failure: Redis outage (stall, retry, resume — nothing lost) and SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import orjson
import pytest
import redis as redis_sync

from stream.infra import start_redis
from stream.kafka_io import collect, event_record, produce
from stream.runner import WorkerProcess, metric
from stream.simulate import generate
from stream.store import key
from stream.topics import RAW, ensure_topics
from tests.batch_oracle import oracle_lines

pytestmark = pytest.mark.integration

END_MS = 1_790_000_000_000


def oracle(settings, events: list[dict], tmp_path: Path) -> list[bytes]:
    return sorted(oracle_lines(settings, events, tmp_path))


def wait_for(condition, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def test_redis_outage_stalls_then_resumes_and_loses_nothing(make_settings, start_worker, tmp_path) -> None:
    redis_server = start_redis(tmp_path / "redis", appendonly=True)
    try:
        settings = make_settings(redis_url=redis_server.url, model_refresh_ms=3_600_000)
        events = list(generate(150, seed=5, end_ms=END_MS))
        first, second = events[: len(events) // 2], events[len(events) // 2 :]
        conversions = sum(e["type"] == "conversion" for e in events)
        start_worker(settings)
        bootstrap = settings.kafka_bootstrap_servers
        asyncio.run(produce(bootstrap, settings.topic(RAW), [event_record(e) for e in first]))
        wait_for(
            lambda: metric(settings, 'touchstream_batch_size_sum{agent="journeys"}') >= len(first),
            what="first half processed",
        )

        redis_server.stop()
        asyncio.run(produce(bootstrap, settings.topic(RAW), [event_record(e) for e in second]))
        wait_for(
            lambda: metric(settings, 'touchstream_stalled{operation="journeys"}') == 1, what="stall seen"
        )
        assert metric(settings, 'touchstream_retries_total{operation="journeys"}') >= 1
        redis_server.restart()  # AOF: the state written before the outage is back
        wait_for(lambda: metric(settings, 'touchstream_stalled{operation="journeys"}') == 0, what="recovered")

        out = asyncio.run(collect(bootstrap, settings.topic("attribution.conversions"), count=conversions))
        by_id: dict[str, set[bytes]] = {}
        for msg in out:
            by_id.setdefault(orjson.loads(msg.value)["attribution_id"], set()).add(msg.value)
        assert all(len(v) == 1 for v in by_id.values())  # duplicates only byte-identical
        assert sorted(v for vs in by_id.values() for v in vs) == oracle(settings, events, tmp_path)
    finally:
        redis_server.stop()


def test_sigterm_commits_what_was_applied_and_exits_in_time(make_settings, start_worker) -> None:
    settings = make_settings(model_refresh_ms=3_600_000)
    events = list(generate(100, seed=6, end_ms=END_MS))
    worker = start_worker(settings)
    asyncio.run(
        produce(settings.kafka_bootstrap_servers, settings.topic(RAW), [event_record(e) for e in events])
    )
    wait_for(
        lambda: metric(settings, 'touchstream_batch_size_sum{agent="journeys"}') >= len(events),
        what="all processed",
    )
    started = time.monotonic()
    assert worker.stop(signal.SIGTERM, timeout=60) == 0
    assert time.monotonic() - started < 30  # well inside Faust's shutdown timeout
    # restarted, it resumes after the committed offsets: nothing is read again
    worker = start_worker(settings)
    time.sleep(3)
    assert metric(settings, "touchstream_replayed_events_total") == 0
    assert metric(settings, 'touchstream_batch_size_sum{agent="journeys"}') == 0


def test_a_bug_crashes_the_worker_and_its_batch_is_processed_after_the_fix(make_settings, tmp_path) -> None:
    """A failure that is not transient (here: a person's Redis key of the wrong type) stops the
    worker with a non-zero exit instead of skipping the batch; once fixed, a new worker
    processes everything from the committed offsets. Small batches: the fetch loop has
    filled the dead handler's queue by then, and must still notice the failure."""
    settings = make_settings(model_refresh_ms=3_600_000, batch_size=10)
    asyncio.run(ensure_topics(settings))
    events = list(generate(30, seed=8, end_ms=END_MS))
    first_seen: dict[str, int] = {}
    for i, e in enumerate(events):
        first_seen.setdefault(e["customer_id"], i)
    late = max(first_seen, key=first_seen.__getitem__)  # first met when the queue is full
    broken = key(late, "state")
    client = redis_sync.Redis.from_url(settings.redis_url)
    client.rpush(broken, "not a person state")
    worker = WorkerProcess(settings, tmp_path / "broken.log").start()
    bootstrap = settings.kafka_bootstrap_servers
    asyncio.run(produce(bootstrap, settings.topic(RAW), [event_record(e) for e in events]))
    assert worker.proc is not None
    assert worker.proc.wait(60) != 0
    assert "WRONGTYPE" in worker.output()
    client.delete(broken)
    fixed = WorkerProcess(settings, tmp_path / "fixed.log").start()
    try:
        conversions = sum(e["type"] == "conversion" for e in events)
        out = asyncio.run(collect(bootstrap, settings.topic("attribution.conversions"), count=conversions))
        assert sorted({m.value for m in out}) == oracle(settings, events, tmp_path)
    finally:
        fixed.stop()
