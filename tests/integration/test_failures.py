"""Operations under failure: Redis outage (stall, retry, resume — nothing lost) and SIGTERM."""

from __future__ import annotations

import signal
import time
import urllib.request

import pytest
import redis as redis_sync

from stream.adapters.redis.keys import key
from stream.core.partitioning import key_hash
from stream.core.topics import CONVERSIONS, RAW
from stream.devtools.redis import start_redis
from stream.devtools.runner import WorkerProcess, metric
from stream.devtools.simulate import generate
from tests.support.events import END_MS, touch
from tests.support.kafka import by_attribution_id, create_topics, publish, read_all
from tests.support.oracle import oracle_lines
from tests.support.waiting import wait_drained, wait_until

pytestmark = pytest.mark.integration


def test_redis_outage_stalls_then_resumes_and_loses_nothing(make_settings, start_worker, tmp_path) -> None:
    redis_server = start_redis(tmp_path / "redis", appendonly=True)
    try:
        settings = make_settings(redis_url=redis_server.url, model_refresh_ms=3_600_000)
        events = list(generate(150, seed=5, end_ms=END_MS))
        first, second = events[: len(events) // 2], events[len(events) // 2 :]
        start_worker(settings)
        publish(settings, settings.topic(RAW), first)
        wait_drained(settings)  # done with it: what comes next is only the outage's

        redis_server.stop()
        publish(settings, settings.topic(RAW), second)
        wait_until(lambda: metric(settings, 'touchstream_stalled{operation="journeys"}') == 1, what="stalled")
        assert metric(settings, 'touchstream_retries_total{operation="journeys"}') >= 1
        # the lag is measured against the broker's end offsets while nothing is committed
        wait_until(lambda: lag_of(settings, settings.topic(RAW)) == len(second), what="the lag of the outage")
        redis_server.restart()  # AOF: the state written before the outage is back
        wait_until(
            lambda: metric(settings, 'touchstream_stalled{operation="journeys"}') == 0, what="recovered"
        )

        wait_drained(settings)
        wait_until(lambda: lag_of(settings, settings.topic(RAW)) == 0, what="no lag once drained")
        by_id = by_attribution_id(read_all(settings, settings.topic(CONVERSIONS)))
        assert all(len(v) == 1 for v in by_id.values())  # duplicates only byte-identical
        assert sorted(v for vs in by_id.values() for v in vs) == sorted(
            oracle_lines(settings, events, tmp_path)
        )
    finally:
        redis_server.stop()


def lag_of(settings, topic: str) -> float:
    """`touchstream_consumer_lag_records`, summed over the partitions of `topic`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5) as page:
        lines = page.read().decode().splitlines()
    mine = [
        line
        for line in lines
        if line.startswith("touchstream_consumer_lag_records{") and f'topic="{topic}"' in line
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in mine)


def one_per_partition(settings) -> list[dict]:
    """A touch of a new customer on every partition (raw and person-keyed alike: same key)."""
    markers: dict[int, dict] = {}
    n = 0
    while len(markers) < settings.partitions:
        pid = f"marker-{n}"
        markers.setdefault(key_hash(pid.encode()) % settings.partitions, touch(pid, 1, END_MS, "email"))
        n += 1
    return [markers[p] for p in sorted(markers)]


def test_sigterm_commits_what_was_applied_and_exits_in_time(make_settings, start_worker) -> None:
    # no sweeps: they would add control events of their own to what the workers read
    settings = make_settings(model_refresh_ms=3_600_000, sweep_interval_ms=3_600_000)
    events = list(generate(100, seed=6, end_ms=END_MS))
    worker = start_worker(settings)
    publish(settings, settings.topic(RAW), events)
    wait_until(
        lambda: metric(settings, 'touchstream_batch_size_sum{stage="journeys"}') >= len(events),
        what="all processed",
    )
    started = time.monotonic()
    assert worker.stop(signal.SIGTERM, timeout=60) == 0
    assert time.monotonic() - started < 30  # well inside Faust's shutdown timeout
    # restarted, it resumes after the committed offsets: nothing is read again. One new
    # touch per partition, and the wait until the worker has committed every partition to
    # its end, show that it did read every partition: only those touches
    worker = start_worker(settings)
    markers = one_per_partition(settings)
    publish(settings, settings.topic(RAW), markers)
    wait_drained(settings)
    assert metric(settings, "touchstream_replayed_events_total") == 0
    assert metric(settings, 'touchstream_batch_size_sum{stage="journeys"}') == len(markers)


def test_a_bug_crashes_the_worker_and_its_batch_is_processed_after_the_fix(make_settings, tmp_path) -> None:
    """A failure that is not transient (here: a person's Redis key of the wrong type) stops the
    worker with a non-zero exit instead of skipping the batch; once fixed, a new worker
    processes everything from the committed offsets. Small batches: the fetch loop has
    filled the dead handler's queue by then, and must still notice the failure."""
    settings = make_settings(model_refresh_ms=3_600_000, batch_size=10)
    create_topics(settings)
    events = list(generate(30, seed=8, end_ms=END_MS))
    first_seen: dict[str, int] = {}
    for i, e in enumerate(events):
        first_seen.setdefault(e["customer_id"], i)
    late = max(first_seen, key=first_seen.__getitem__)  # first met when the queue is full
    broken = key(late, "state")
    client = redis_sync.Redis.from_url(settings.redis_url)
    client.rpush(broken, "not a person state")
    worker = WorkerProcess(settings, tmp_path / "broken.log").start()
    publish(settings, settings.topic(RAW), events)
    assert worker.proc is not None
    assert worker.proc.wait(60) != 0
    assert "WRONGTYPE" in worker.output()
    client.delete(broken)
    fixed = WorkerProcess(settings, tmp_path / "fixed.log").start()
    try:
        wait_drained(settings)
        out = read_all(settings, settings.topic(CONVERSIONS))
        assert sorted({m.value for m in out}) == sorted(oracle_lines(settings, events, tmp_path))
    finally:
        fixed.stop()
