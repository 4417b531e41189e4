"""The soak benchmark's pure parts (bench/soak.py does the I/O): the workload, the p99 of an
interval from two histogram snapshots, least-squares slopes and their verdicts, the CSV rows
and the printed summary."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from stream.devtools.simulate import Mix, customer_events

LAG_SHARE = 0.01  # the lag grows if it rises by more than 1 % of the input rate (records/s per s)
MEMORY_SHARE = 0.01  # the others grow if they rise by more than 1 % of their mean per minute


def population(customers: int, active: int, seed: int, mix: Mix | None = None) -> Iterator[dict[str, Any]]:
    """Endless events of a bounded population: `active` visits in flight at once, each the
    simulator's journey of one customer (`stream.devtools.simulate.customer_events`) not
    already in flight, drawn at random from `customers`. A visit's events come in order,
    interleaved at random with the other visits'; when one ends, another customer's starts. The
    same customers come back again and again (ids `c-<n>`, `a-<n>`), so their journeys go on,
    or restart once the lookback has passed. Their `ts` is the simulator's: replace it when
    sending."""
    rng = random.Random(seed)
    mix = mix or Mix()
    idle = list(range(customers))
    flying: list[tuple[int, Iterator[dict[str, Any]]]] = []

    def visit() -> None:
        i = rng.randrange(len(idle))
        idle[i], idle[-1] = idle[-1], idle[i]
        n = idle.pop()
        flying.append((n, iter(customer_events(rng, n, 0, mix))))

    for _ in range(min(active, customers)):
        visit()
    while True:
        i = rng.randrange(len(flying))
        n, events = flying[i]
        event = next(events, None)
        if event is not None:
            yield event
            continue
        flying[i] = flying[-1]
        flying.pop()
        idle.append(n)
        visit()


_BUCKET = re.compile(r'^(\w+)_bucket\{(?:[^}]*,)?le="([^"]+)"(?:,[^}]*)?\} (\S+)$')


def histogram_buckets(text: str, name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets `(upper bound, count)` from a Prometheus text page,
    by upper bound (`+Inf` is `math.inf`); the histogram without labels other than `le`."""
    buckets = []
    for line in text.splitlines():
        match = _BUCKET.match(line)
        if match and match.group(1) == name:
            buckets.append((float(match.group(2)), float(match.group(3))))
    return sorted(buckets)


def interval_quantile(
    q: float, before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]
) -> float | None:
    """The q-quantile (0..1) of what a histogram observed between two snapshots of its buckets,
    interpolated linearly inside the bucket it falls in as Prometheus' `histogram_quantile`
    does (the first bucket starts at 0; in the `+Inf` bucket, the highest finite bound).
    None when nothing was observed in between."""
    start = dict(before)
    counts = [(bound, count - start.get(bound, 0.0)) for bound, count in after]
    total = counts[-1][1] if counts else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in counts:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below) if count > below else bound
        lower, below = bound, count
    return lower


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of `(x, y)` points; None under two distinct x."""
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


@dataclass(frozen=True)
class Sample:
    """One sample, `t_s` seconds into the soak; `p99_latency_ms` and `conversions` are of the
    interval that ends here (no p99 without a conversion)."""

    t_s: float
    events_sent: int
    lag_records: int
    worker_rss_bytes: int
    redis_used_memory_bytes: int
    p99_latency_ms: float | None
    conversions: int
    redis_keys: int
    path_fields: int  # of the path-count hashes, over the partitions: 3 per distinct path
    report_fields: int  # of the UTC day's report-counter hashes, over the partitions
    worker_cpu_s: float  # user + system, since the worker started
    load_1m: float  # the machine's load average: what else ran


@dataclass(frozen=True)
class Series:
    field: str  # of Sample
    label: str
    unit: str
    scale: float  # sample value * scale = value in `unit`


SERIES = (
    Series("lag_records", "consumer lag", "records", 1.0),
    Series("worker_rss_bytes", "worker RSS", "MB", 1e-6),
    Series("redis_used_memory_bytes", "Redis used_memory", "MB", 1e-6),
    Series("p99_latency_ms", "p99 latency", "ms", 1.0),
)


@dataclass(frozen=True)
class Fit:
    """A series' least-squares line over the samples from `since_s` on, in the series' unit."""

    series: Series
    since_s: float
    slope_per_min: float | None
    intercept: float | None  # at t = 0 s
    mean: float | None
    final: float | None
    threshold_per_min: float | None
    verdict: str  # flat, growing, falling, or "no data"


def fit(samples: Sequence[Sample], series: Series, since_s: float, rate: float) -> Fit:
    """Fit `series` over the samples at or after `since_s`. The verdict is "growing" when the
    slope exceeds the threshold, "falling" below minus it, else "flat": for the lag, 1 % of the
    input `rate` (the backlog grows by more than 1 % of what arrives); for the others, 1 % of
    their mean per minute (10 % over ten minutes)."""
    points = [
        (s.t_s, value * series.scale)
        for s in samples
        if s.t_s >= since_s and (value := getattr(s, series.field)) is not None
    ]
    per_s = slope(points)
    if per_s is None:
        return Fit(series, since_s, None, None, None, None, None, "no data")
    mean_x = sum(x for x, _ in points) / len(points)
    mean = sum(y for _, y in points) / len(points)
    threshold = LAG_SHARE * rate * 60 if series.field == "lag_records" else MEMORY_SHARE * abs(mean)
    per_min = per_s * 60
    verdict = "growing" if per_min > threshold else "falling" if per_min < -threshold else "flat"
    return Fit(series, since_s, per_min, mean - per_s * mean_x, mean, points[-1][1], threshold, verdict)


def csv_rows(samples: Sequence[Sample]) -> list[list[str]]:
    """The header, then one row per sample (p99 with 0.1 ms, empty when there is none)."""
    header = [f.name for f in fields(Sample)]
    rows = [header]
    for s in samples:
        row = [str(getattr(s, name)) for name in header]
        row[0] = f"{s.t_s:.1f}"
        row[header.index("p99_latency_ms")] = "" if s.p99_latency_ms is None else f"{s.p99_latency_ms:.1f}"
        row[header.index("worker_cpu_s")] = f"{s.worker_cpu_s:.2f}"
        row[header.index("load_1m")] = f"{s.load_1m:.2f}"
        rows.append(row)
    return rows


def cpu_line(samples: Sequence[Sample], cores: int) -> str:
    """The worker's CPU over the soak, per event sent and as a share of one core, and the
    machine's mean load average (on `cores` cores: others' work slows the soak down)."""
    first, last = samples[0], samples[-1]
    cpu = last.worker_cpu_s - first.worker_cpu_s
    seconds = last.t_s - first.t_s
    per_event = cpu / max(1, last.events_sent - first.events_sent) * 1e6
    load = sum(s.load_1m for s in samples) / len(samples)
    return (
        f"worker CPU {per_event:,.0f} µs per event sent, {cpu / seconds:.0%} of a core;"
        f" load average {load:.2f} on {cores} cores (mean of the samples)"
    )


def _number(value: float | None, unit: str, rate: bool = False) -> str:
    """A value in its unit (MB and ms to 0.1, records whole); a rate per minute signed, one
    digit finer."""
    if value is None:
        return "-"
    digits = (1 if unit in ("MB", "ms") else 0) + rate
    return f"{value:{'+' if rate else ''},.{digits}f} {unit}" + ("/min" if rate else "")


def summary_lines(fits: Sequence[Fit]) -> list[str]:
    """One line per series: final value, mean and slope per minute over the fitted window, the
    verdict and its threshold."""
    lines = [f"{'series':<18}{'final':>16}{'mean':>16}{'slope':>24}   verdict (threshold)"]
    for f in fits:
        unit = f.series.unit
        slope_text = "-" if f.slope_per_min is None else _number(f.slope_per_min, unit, rate=True)
        threshold = (
            ""
            if f.threshold_per_min is None
            else f" (|slope| ≤ {_number(f.threshold_per_min, unit, rate=True)[1:]})"
        )
        lines.append(
            f"{f.series.label:<18}{_number(f.final, unit):>16}{_number(f.mean, unit):>16}"
            f"{slope_text:>24}   {f.verdict}{threshold}"
        )
    return lines


def progress_line(s: Sample) -> str:
    """What the soak prints at each sample."""
    p99 = "-" if s.p99_latency_ms is None else f"{s.p99_latency_ms:,.0f} ms"
    return (
        f"{int(s.t_s) // 60:>3}:{int(s.t_s) % 60:02d}  sent {s.events_sent:>9,}  lag {s.lag_records:>7,}"
        f"  worker RSS {s.worker_rss_bytes / 1e6:6.1f} MB  Redis {s.redis_used_memory_bytes / 1e6:6.1f} MB"
        f"  p99 {p99:>8} ({s.conversions:,} conversions)  keys {s.redis_keys:,}"
        f"  paths {s.path_fields:,}  reports {s.report_fields:,}  load {s.load_1m:.1f}"
    )
