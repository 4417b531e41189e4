"""The dashboard's live figures (`stream.core.live`): rates, history, latency quantiles, lag."""

from __future__ import annotations

import math

import pytest

from stream.core.live import LiveWindow, Sample, quantile

INF = math.inf


def test_quantile_interpolates_within_the_bucket_as_prometheus_does() -> None:
    # 10 observations: 4 in (0, 0.01], 4 in (0.01, 0.1], 2 in (0.1, 1]
    buckets = [(0.01, 4), (0.1, 8), (1.0, 10), (INF, 10)]
    # rank 5 is the 1st of 4 in the second bucket: 0.01 + 0.09 * 1/4
    assert quantile(0.5, buckets) == pytest.approx(0.0325)
    # rank 9.9 is 1.9 of 2 in the third: 0.1 + 0.9 * 0.95
    assert quantile(0.99, buckets) == pytest.approx(0.955)
    # rank 2 in the lowest bucket: from 0
    assert quantile(0.2, buckets) == pytest.approx(0.005)


def test_quantile_in_the_infinite_bucket_is_the_highest_finite_bound_and_none_without_data() -> None:
    assert quantile(0.99, [(0.01, 0), (1.0, 1), (INF, 10)]) == 1.0
    assert quantile(0.5, [(0.01, 0), (INF, 0)]) is None
    assert quantile(0.5, []) is None


def sample(
    at: float, purchases: float, touches: float, dlq: float, out: float, fast: float, slow: float
) -> Sample:
    """Counter totals; latencies: `fast` observations ≤ 10 ms, `slow` ones in (0.1, 1] s."""
    return Sample(
        at,
        {"conversion": purchases, "touch": touches},
        {"invalid_json": dlq},
        out,
        [(0.01, fast), (0.1, fast), (1.0, fast + slow), (INF, fast + slow)],
    )


def test_rates_per_second_over_the_last_interval_and_their_history() -> None:
    window = LiveWindow()
    window.add(sample(100.0, 0, 0, 0, 0, 0, 0))
    window.add(sample(102.0, 10, 90, 2, 10, 10, 0))
    window.add(sample(104.0, 30, 190, 2, 30, 20, 10))
    doc = window.doc({("raw", 1): 5, ("raw", 0): 7})

    assert doc["now"] == {
        "at": 104.0,
        "events_in": 60.0,  # (20 + 100) / 2 s
        "events_in_by_type": {"conversion": 10.0, "touch": 50.0},
        "dlq": 0.0,
        "dlq_by_reason": {"invalid_json": 0.0},
        "attributions_out": 10.0,
    }
    assert doc["history"] == [
        {"at": 102.0, "events_in": 50.0, "dlq": 1.0, "attributions_out": 5.0},
        {"at": 104.0, "events_in": 60.0, "dlq": 0.0, "attributions_out": 10.0},
    ]
    assert doc["lag"] == {
        "records": 12,
        "partitions": [
            {"topic": "raw", "partition": 0, "records": 7},
            {"topic": "raw", "partition": 1, "records": 5},
        ],
    }


def test_a_lag_not_measured_is_null_not_zero() -> None:
    window = LiveWindow()
    window.add(sample(0.0, 0, 0, 0, 0, 0, 0))
    assert window.doc(None)["lag"] == {"records": None, "partitions": []}
    assert window.doc({})["lag"] == {"records": 0, "partitions": []}


def test_latency_covers_the_last_minute_only() -> None:
    window = LiveWindow()
    window.add(sample(0.0, 0, 0, 0, 0, 0, 0))
    window.add(sample(10.0, 0, 0, 0, 0, 100, 0))  # 100 fast ones, more than a minute ago at the end
    window.add(sample(80.0, 0, 0, 0, 0, 100, 4))  # then 4 slow ones
    window.add(sample(82.0, 0, 0, 0, 0, 100, 4))
    latency = window.doc({})["latency"]
    # since the 80 s sample (the oldest within 60 s of 82 s): nothing new
    assert latency == {"window_seconds": 2.0, "conversions": 0, "p50_seconds": None, "p99_seconds": None}

    window.add(sample(84.0, 0, 0, 0, 0, 102, 6))  # 2 fast, 2 slow since 80 s
    latency = window.doc({})["latency"]
    assert latency["window_seconds"] == 4.0 and latency["conversions"] == 4
    assert latency["p50_seconds"] == pytest.approx(0.01)  # rank 2: the last of the 2 fast ones
    assert latency["p99_seconds"] == pytest.approx(0.1 + 0.9 * (3.96 - 2) / 2)


def test_a_restarted_counter_counts_from_zero_and_one_sample_gives_no_rates() -> None:
    window = LiveWindow()
    window.add(sample(0.0, 50, 50, 0, 50, 50, 0))
    doc = window.doc({})
    assert doc["now"] is None and doc["history"] == []
    assert doc["latency"]["conversions"] == 50 and doc["latency"]["window_seconds"] is None
    window.add(sample(2.0, 4, 0, 0, 4, 4, 0))  # the worker restarted: totals fell
    now = window.doc({})["now"]
    assert now["events_in_by_type"] == {"conversion": 2.0, "touch": 0.0} and now["attributions_out"] == 2.0


def test_the_window_keeps_a_bounded_history() -> None:
    window = LiveWindow(size=3)
    for at in range(10):
        window.add(sample(float(at), at, 0, 0, 0, 0, 0))
    assert [h["at"] for h in window.doc({})["history"]] == [8.0, 9.0]
