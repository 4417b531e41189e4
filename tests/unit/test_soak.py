"""The soak benchmark's pure parts (bench/soak_series.py): workload, interval p99, slopes,
verdicts, CSV rows and the printed lines."""

from __future__ import annotations

import itertools
import math
import re

from bench.soak_series import (
    SERIES,
    Sample,
    cpu_line,
    csv_rows,
    fit,
    histogram_buckets,
    interval_quantile,
    population,
    progress_line,
    slope,
    summary_lines,
)

LAG, RSS, REDIS, P99 = SERIES
METRICS = """\
# HELP touchstream_latency_seconds Conversion produced to attribution emitted
# TYPE touchstream_latency_seconds histogram
touchstream_latency_seconds_bucket{le="0.5"} 90.0
touchstream_latency_seconds_bucket{le="0.25"} 50.0
touchstream_latency_seconds_bucket{le="1.0"} 100.0
touchstream_latency_seconds_bucket{le="+Inf"} 100.0
touchstream_latency_seconds_count 100.0
touchstream_latency_seconds_sum 31.5
touchstream_latency_seconds_created 1.7e+09
touchstream_redis_call_seconds_bucket{le="0.5",operation="load"} 7.0
touchstream_latency_seconds_total_bucket{le="0.5"} 3.0
"""


def sample(t_s: float, **values: float | int | None) -> Sample:
    fields: dict = {
        "events_sent": 0,
        "lag_records": 0,
        "worker_rss_bytes": 0,
        "redis_used_memory_bytes": 0,
        "p99_latency_ms": None,
        "conversions": 0,
        "redis_keys": 0,
        "path_fields": 0,
        "report_fields": 0,
        "worker_cpu_s": 0.0,
        "load_1m": 0.0,
    }
    return Sample(t_s=t_s, **(fields | values))


def test_histogram_buckets_are_the_named_histograms_by_bound() -> None:
    assert histogram_buckets(METRICS, "touchstream_latency_seconds") == [
        (0.25, 50.0),
        (0.5, 90.0),
        (1.0, 100.0),
        (math.inf, 100.0),
    ]
    assert histogram_buckets(METRICS, "touchstream_redis_call_seconds") == [(0.5, 7.0)]
    assert histogram_buckets("", "touchstream_latency_seconds") == []


def test_interval_quantile_interpolates_inside_the_bucket_of_the_difference() -> None:
    before = [(0.25, 10.0), (0.5, 10.0), (1.0, 10.0), (math.inf, 10.0)]
    after = [(0.25, 60.0), (0.5, 100.0), (1.0, 110.0), (math.inf, 110.0)]  # 50, 40, 10 in between
    assert interval_quantile(0.5, before, after) == 0.25
    assert interval_quantile(0.95, before, after) == 0.75
    assert interval_quantile(0.99, before, after) == 0.95
    assert interval_quantile(0.2, before, after) == 0.1


def test_interval_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    after = [(0.25, 0.0), (0.5, 0.0), (1.0, 98.0), (math.inf, 100.0)]
    assert interval_quantile(0.99, [], after) == 1.0


def test_interval_quantile_of_an_interval_without_observations_is_none() -> None:
    same = [(0.25, 5.0), (math.inf, 5.0)]
    assert interval_quantile(0.99, same, same) is None
    assert interval_quantile(0.99, [], []) is None


def test_slope_is_the_least_squares_slope() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == 2.0
    assert slope([(0, 0), (10, 1), (20, 0)]) == 0.0
    assert slope([(0, 0), (1, 1), (2, 1), (3, 2)]) == 0.6
    assert slope([(5, 1)]) is None
    assert slope([(1, 1), (1, 2)]) is None


def test_fit_of_a_growing_memory_series_per_minute_in_its_unit() -> None:
    samples = [
        sample(t, worker_rss_bytes=b) for t, b in ((0, 100_000_000), (60, 110_000_000), (120, 120_000_000))
    ]
    f = fit(samples, RSS, since_s=0, rate=1000)
    assert (f.slope_per_min, f.intercept, f.mean, f.final) == (10.0, 100.0, 110.0, 120.0)
    assert (f.threshold_per_min, f.verdict) == (1.1, "growing")


def test_fit_uses_only_the_samples_from_the_warmup_on() -> None:
    samples = [sample(t, redis_used_memory_bytes=b) for t, b in ((0, 0), (60, 50_000_000), (120, 50_000_000))]
    f = fit(samples, REDIS, since_s=60, rate=1000)
    assert (f.slope_per_min, f.mean, f.verdict) == (0.0, 50.0, "flat")


def test_the_lag_threshold_is_one_percent_of_the_input_rate() -> None:
    rising = [sample(t, lag_records=n) for t, n in ((0, 0), (60, 500), (120, 1000))]
    assert fit(rising, LAG, since_s=0, rate=1000).threshold_per_min == 600.0
    assert fit(rising, LAG, since_s=0, rate=1000).verdict == "flat"  # +500/min: under 600
    assert fit(rising, LAG, since_s=0, rate=500).verdict == "growing"  # over 300
    falling = [sample(t, lag_records=n) for t, n in ((0, 1000), (60, 0))]
    assert fit(falling, LAG, since_s=0, rate=500).verdict == "falling"


def test_fit_skips_intervals_without_a_p99_and_says_when_there_is_no_data() -> None:
    samples = [sample(0), sample(10, p99_latency_ms=100.0), sample(20, p99_latency_ms=100.0), sample(30)]
    f = fit(samples, P99, since_s=0, rate=1000)
    assert (f.slope_per_min, f.mean, f.final, f.verdict) == (0.0, 100.0, 100.0, "flat")
    empty = fit([sample(0), sample(10)], P99, since_s=0, rate=1000)
    assert (empty.slope_per_min, empty.verdict) == (None, "no data")


def test_csv_rows() -> None:
    rows = csv_rows(
        [
            sample(0),
            sample(
                10.04,
                events_sent=12_000,
                lag_records=7,
                p99_latency_ms=123.456,
                worker_cpu_s=3.2,
                load_1m=1.5,
            ),
        ]
    )
    assert rows == [
        [
            "t_s",
            "events_sent",
            "lag_records",
            "worker_rss_bytes",
            "redis_used_memory_bytes",
            "p99_latency_ms",
            "conversions",
            "redis_keys",
            "path_fields",
            "report_fields",
            "worker_cpu_s",
            "load_1m",
        ],
        ["0.0", "0", "0", "0", "0", "", "0", "0", "0", "0", "0.00", "0.00"],
        ["10.0", "12000", "7", "0", "0", "123.5", "0", "0", "0", "0", "3.20", "1.50"],
    ]


def test_summary_lines() -> None:
    samples = [
        sample(t, worker_rss_bytes=b) for t, b in ((0, 100_000_000), (60, 110_000_000), (120, 120_000_000))
    ]
    lines = summary_lines([fit(samples, RSS, 0, 1000), fit(samples, P99, 0, 1000)])
    assert lines == [
        "series                       final            mean                   slope   verdict (threshold)",
        "worker RSS                120.0 MB        110.0 MB           +10.00 MB/min"
        "   growing (|slope| ≤ 1.10 MB/min)",
        "p99 latency                      -               -                       -   no data",
    ]


def test_cpu_line() -> None:
    samples = [
        sample(0, worker_cpu_s=10.0, load_1m=1.0),
        sample(50, events_sent=50_000, worker_cpu_s=35.0, load_1m=3.0),
        sample(100, events_sent=100_000, worker_cpu_s=60.0, load_1m=2.0),
    ]
    assert cpu_line(samples, cores=2) == (
        "worker CPU 500 µs per event sent, 50% of a core; load average 2.00 on 2 cores (mean of the samples)"
    )


def test_progress_line() -> None:
    s = sample(
        70,
        events_sent=84_000,
        lag_records=1234,
        worker_rss_bytes=150_000_000,
        redis_used_memory_bytes=40_500_000,
        p99_latency_ms=180.4,
        conversions=61,
        redis_keys=2500,
        path_fields=8000,
        report_fields=12_000,
        load_1m=2.26,
    )
    assert progress_line(s) == (
        "  1:10  sent    84,000  lag   1,234  worker RSS  150.0 MB  Redis   40.5 MB"
        "  p99   180 ms (61 conversions)  keys 2,500  paths 8,000  reports 12,000  load 2.3"
    )


def test_population_is_bounded_and_comes_back() -> None:
    events = list(itertools.islice(population(customers=20, active=5, seed=3), 3000))
    customers = {e["customer_id"] for e in events}
    assert customers == {f"c-{n}" for n in range(20)}
    assert all(e["anonymous_id"] == "a-" + e["customer_id"][2:] for e in events if e["type"] == "interaction")
    assert len({e["event_id"] for e in events}) == 3000
    assert {e["type"] for e in events} == {"interaction", "conversion"}


def test_population_is_seeded() -> None:
    first = list(itertools.islice(population(50, 10, seed=1), 200))
    assert first == list(itertools.islice(population(50, 10, seed=1), 200))
    assert first != list(itertools.islice(population(50, 10, seed=2), 200))


def visits(events: list[dict]) -> str:
    """I for an interaction, L for a lead, P for a purchase."""
    return "".join("I" if e["type"] == "interaction" else e["conversion"][0].upper() for e in events)


def test_a_customer_is_in_one_visit_at_a_time() -> None:
    """Per customer, the events are whole visits one after the other: interactions, then a lead
    and maybe a purchase (the last visit may be cut short)."""
    events = list(itertools.islice(population(customers=30, active=10, seed=4), 5000))
    for n in range(30):
        mine = [e for e in events if e["customer_id"] == f"c-{n}"]
        assert re.fullmatch(r"(I+(L|LP)?)*I*L?", visits(mine)), n


def test_one_visit_in_flight_sends_whole_visits() -> None:
    events = list(itertools.islice(population(customers=10, active=1, seed=5), 500))
    runs = [visits(list(run)) for _, run in itertools.groupby(events, key=lambda e: e["customer_id"])]
    assert len(runs) > 20
    assert all(re.fullmatch(r"(I+(L|LP)?)+", run) for run in runs[:-1])
