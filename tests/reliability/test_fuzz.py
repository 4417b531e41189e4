"""Hostile input through the real worker: it never crashes or stalls, every bad value lands in
the DLQ with a reason code, and the good values interleaved with them are all attributed."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from stream.adapters.kafka.clients import event_record
from stream.core.config import Limits
from stream.core.topics import CONVERSIONS, DLQ, RAW
from stream.core.validation import REASONS
from stream.devtools.runner import metric
from stream.devtools.simulate import generate
from tests.support.corpus import conflicting_duplicates, hostile
from tests.support.events import END_MS
from tests.support.kafka import publish, read_all, values
from tests.support.oracle import oracle_lines
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.reliability

SEED = 4242


def test_ten_thousand_hostile_values_interleaved_with_good_ones(
    make_settings, start_worker, tmp_path, report
) -> None:
    rng = random.Random(SEED)
    settings = make_settings(model_refresh_ms=3_600_000, batch_size=500)
    good = list(generate(300, seed=SEED, end_ms=END_MS))
    limits = Limits(settings.max_value_bytes, settings.max_context_bytes, settings.max_future_skew_ms)
    bad = hostile(rng, good, 10_000, limits, int(time.time() * 1000))
    conflicts = conflicting_duplicates(rng, good, 50)

    # interleave: bad values anywhere; each conflicting duplicate after the event it copies
    records = [event_record(e) for e in good]
    for h in bad:
        records.insert(rng.randrange(len(records) + 1), (h.key, h.value))
    records += [(h.key, h.value) for h in conflicts]
    expected = sorted(oracle_lines(settings, good, tmp_path))

    worker = start_worker(settings)
    started = time.monotonic()
    publish(settings, settings.topic(RAW), records)
    wait_drained(settings, timeout=180)
    elapsed = time.monotonic() - started
    docs = values(settings, settings.topic(DLQ))  # each one schema-checked
    out = read_all(settings, settings.topic(CONVERSIONS))

    reasons = Counter(d["reason_code"] for d in docs)
    assert set(reasons) <= set(REASONS) | {"duplicate_event_id"}
    assert reasons["duplicate_event_id"] == len(conflicts)
    assert len(docs) == len(bad) + len(conflicts)  # every bad value exactly once (no restarts here)
    ingest_raw = Counter(  # what validation rejected (a duplicate is found later, by the fence)
        d["raw"]
        for d in docs
        if d["raw_encoding"] == "utf-8"
        and d["topic"] == settings.topic(RAW)
        and d["reason_code"] != "duplicate_event_id"
    )
    assert sum(ingest_raw.values()) == sum(1 for h in bad if _utf8(h.value))
    assert ingest_raw == Counter(h.value.decode() for h in bad if _utf8(h.value))
    assert sorted(m.value for m in out) == expected  # every good conversion, exactly as the batch oracle
    assert worker.proc is not None and worker.proc.poll() is None  # never crashed
    assert metric(settings, 'touchstream_stalled{operation="journeys"}') == 0
    by_category = Counter(h.category for h in bad)
    report(
        f"fuzz: {len(bad)} hostile values ({', '.join(f'{k} {v}' for k, v in sorted(by_category.items()))}) "
        f"+ {len(conflicts)} conflicting duplicates interleaved with {len(good)} good events"
    )
    report(
        f"fuzz: DLQ {len(docs)} records by reason: {dict(sorted(reasons.items()))}; "
        f"{len(out)} conversions attributed = oracle; {elapsed:.1f}s; worker alive, not stalled"
    )


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
