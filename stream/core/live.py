"""The dashboard's live figures (pure): rates, latency quantiles and a short history, from
samples of the worker's counters taken every couple of seconds.

A `Sample` holds counter totals (as Prometheus exposes them) at one moment; `LiveWindow`
keeps the last few minutes of them and turns them into the JSON of `/api/live`: rates per
second over the last interval and their history, conversion→attribution latency quantiles
over the last minute (interpolated within histogram buckets, as Prometheus'
`histogram_quantile` does), and the consumer lag handed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

HISTORY = 150  # samples kept: 5 minutes at one per 2 s
LATENCY_WINDOW_S = 60.0
ROUND = 3


@dataclass(frozen=True, slots=True)
class Sample:
    """Counter totals at time `at` (seconds): events in by type, DLQ by reason, attribution
    events out, and the latency histogram's cumulative bucket counts ((upper bound, count),
    ascending, the last bound +inf)."""

    at: float
    events_in: Mapping[str, float] = field(default_factory=dict)
    dlq: Mapping[str, float] = field(default_factory=dict)
    attributions_out: float = 0.0
    latency_buckets: Sequence[tuple[float, float]] = ()


def _per_second(new: Mapping[str, float], old: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Rates per label; a counter that went down (the worker restarted) counts from 0."""
    rates = {}
    for label, total in new.items():
        before = old.get(label, 0.0)
        rates[label] = round((total - before if total >= before else total) / seconds, ROUND)
    return rates


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative bucket counts, interpolated linearly within its bucket
    (the lowest bucket from 0); the highest finite bound if it falls in the +inf bucket;
    None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower


def _bucket_delta(
    new: Sequence[tuple[float, float]], old: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The observations between two snapshots of a histogram (the newer alone after a reset)."""
    if len(old) != len(new) or any(n < o for (_, n), (_, o) in zip(new, old, strict=True)):
        return list(new)
    return [(bound, n - o) for (bound, n), (_, o) in zip(new, old, strict=True)]


class LiveWindow:
    """The last `size` samples, and the live figures they give."""

    def __init__(self, size: int = HISTORY) -> None:
        self.samples: deque[Sample] = deque(maxlen=size)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def _rates(self, new: Sample, old: Sample) -> dict[str, Any]:
        seconds = max(new.at - old.at, 1e-9)
        events = _per_second(new.events_in, old.events_in, seconds)
        dlq = _per_second(new.dlq, old.dlq, seconds)
        out = _per_second({"": new.attributions_out}, {"": old.attributions_out}, seconds)[""]
        return {
            "at": round(new.at, ROUND),
            "events_in": round(sum(events.values()), ROUND),
            "events_in_by_type": dict(sorted(events.items())),
            "dlq": round(sum(dlq.values()), ROUND),
            "dlq_by_reason": dict(sorted(dlq.items())),
            "attributions_out": out,
        }

    def _latency(self) -> dict[str, Any]:
        """Quantiles of the observations since the oldest sample of the last minute (since
        the one before the newest if that is older; since the start with one sample)."""
        newest = self.samples[-1]
        recent = [s for s in self.samples if newest.at - s.at <= LATENCY_WINDOW_S]
        since = recent[0] if len(recent) > 1 else (self.samples[-2] if len(self.samples) > 1 else None)
        window = _bucket_delta(newest.latency_buckets, since.latency_buckets if since else ())
        p50, p99 = quantile(0.5, window), quantile(0.99, window)
        return {
            "window_seconds": round(newest.at - since.at, ROUND) if since else None,
            "conversions": window[-1][1] if window else 0,
            "p50_seconds": None if p50 is None else round(p50, 6),
            "p99_seconds": None if p99 is None else round(p99, 6),
        }

    def doc(self, lag: Mapping[tuple[str, int], int] | None) -> dict[str, Any]:
        """`/api/live`: the latest rates, their history (oldest first), the latency over the
        last minute and the consumer lag per partition (`{(topic, partition): records}`; None
        when it could not be measured: its records are then null, not 0)."""
        samples = list(self.samples)
        history = [self._rates(new, old) for old, new in pairwise(samples)]
        partitions = [{"topic": t, "partition": p, "records": n} for (t, p), n in sorted((lag or {}).items())]
        return {
            "now": history[-1] if history else None,
            "history": [{k: h[k] for k in ("at", "events_in", "dlq", "attributions_out")} for h in history],
            "latency": self._latency() if samples else None,
            "lag": {"records": None if lag is None else sum(lag.values()), "partitions": partitions},
        }
