"""Touchstream's Prometheus metrics, created against a registry passed in.

Faust's own metrics come from `faust.sensors.prometheus` on the same
registry; together they are served on the worker's `/metrics` page.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream.core.live import Sample
from stream.runtime.retry import LogRetries, RetryObserver

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)  # seconds
REDIS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5)  # seconds
BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000)
SECOND, MINUTE, HOUR, DAY = 1, 60, 3600, 86_400  # seconds
# how far behind the person's last event an event arrives: 0 in order, then up to the lookback
LATENESS_BUCKETS = (
    0,
    SECOND,
    10 * SECOND,
    MINUTE,
    10 * MINUTE,
    HOUR,
    6 * HOUR,
    DAY,
    7 * DAY,
    30 * DAY,
    90 * DAY,
)


@dataclass(frozen=True)
class Metrics:
    events_in: Counter
    dlq: Counter
    attributions_out: Counter
    sessions_out: Counter
    replayed: Counter
    duplicates: Counter
    refused_writes: Counter
    batch_size: Histogram
    latency_seconds: Histogram
    redis_seconds: Histogram
    retries: Counter
    redis_client_retries: Counter
    stalled: Gauge
    identity_conflicts: Counter
    lateness_seconds: Histogram
    approximated: Counter
    partition_skew_seconds: Gauge
    owned_partitions: Gauge
    consumer_lag: Gauge
    partitions_holding: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "touchstream") -> Metrics:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{prefix}_{name}", doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"{prefix}_{name}", doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
        ) -> Histogram:
            return Histogram(f"{prefix}_{name}", doc, labels, buckets=buckets, registry=registry)

        return cls(
            events_in=counter("events_in", "Valid input events by type", ("type",)),
            dlq=counter("dlq", "Values sent to the dead-letter topic by reason", ("reason",)),
            attributions_out=counter("attributions_out", "Attribution events emitted (incl. replays)"),
            sessions_out=counter("sessions_out", "Closed sessions emitted", ("closed_by",)),
            replayed=counter("replayed_events", "Events already applied (fenced), outputs re-emitted"),
            duplicates=counter("duplicate_events", "Events skipped because their event_id was seen"),
            refused_writes=counter("refused_writes", "Person writes refused by the fence (stale version)"),
            batch_size=histogram(
                "batch_size",
                "Records per batch: routed (ingest), applied (journeys)",
                BATCH_BUCKETS,
                ("stage",),
            ),
            identity_conflicts=counter(
                "identity_conflicts",
                "identify events refused: the anonymous id is mapped to another customer",
            ),
            **_retry_metrics(counter, gauge),
            lateness_seconds=histogram(
                "event_lateness_seconds",
                "How far (event time) behind the person's last event an event was applied",
                LATENESS_BUCKETS,
            ),
            approximated=counter(
                "late_approximated",
                "Late interactions older than the re-derive window, made a touchpoint of their own",
            ),
            **_partition_gauges(gauge),
            latency_seconds=histogram(
                "latency_seconds", "Conversion produced to attribution emitted", LATENCY_BUCKETS
            ),
            redis_seconds=histogram(
                "redis_call_seconds",
                "A batch's Redis round trips: identity lookup, person load, fenced save, replicate",
                REDIS_BUCKETS,
                ("operation",),
            ),
        )


def _retry_metrics(counter: Callable[..., Counter], gauge: Callable[..., Gauge]) -> dict[str, Any]:
    """What transient failures cost: the retries (the runtime's and the cluster client's own)
    and the operations waiting now."""
    return {
        "retries": counter(
            "retries", "Transient failures retried (Redis or broker unavailable)", ("operation",)
        ),
        "redis_client_retries": counter(
            "redis_client_retries",
            "What the Redis Cluster client followed or retried by itself, by reason: moved, ask, "
            "tryagain, clusterdown, connection, timeout (what lasts reaches `retries`)",
            ("reason",),
        ),
        "stalled": gauge(
            "stalled", "1 while an operation is waiting for Redis or the broker to come back", ("operation",)
        ),
    }


def _partition_gauges(gauge: Callable[..., Gauge]) -> dict[str, Gauge]:
    """The gauges about the partitions a worker owns and reads."""
    return {
        "partition_skew_seconds": gauge(
            "partition_skew_seconds",
            "Event-time spread between the partitions a handler reads with records still to hand "
            "on (the next to hand on of each)",
            ("handler",),
        ),
        "owned_partitions": gauge("owned_partitions", "Person-keyed (and raw) partitions this worker owns"),
        "consumer_lag": gauge(
            "consumer_lag_records",
            "Records of a partition this worker holds past the group's committed offset (end "
            "offsets asked of the broker on a timer, not the fetcher's)",
            ("topic", "partition"),
        ),
        "partitions_holding": gauge(
            "partitions_holding",
            "Partitions a handler reads whose fetched records are held back, waiting for the others",
            ("handler",),
        ),
    }


@dataclass(frozen=True)
class MeteredRetries:
    """A retry observer (`stream.runtime.retry`) that logs and counts: `touchstream_retries_total`
    per retry, `touchstream_stalled` 1 while an operation waits and 0 once it recovered."""

    metrics: Metrics
    log: RetryObserver = field(default_factory=LogRetries)
    stalled: set[str] = field(default_factory=set)  # the operations waiting now (`/ready`)

    def retrying(self, what: str, failures: int, delay: float, exc: BaseException) -> None:
        self.log.retrying(what, failures, delay, exc)
        self.metrics.retries.labels(what).inc()
        self.metrics.stalled.labels(what).set(1)
        self.stalled.add(what)

    def recovered(self, what: str, failures: int) -> None:
        self.log.recovered(what, failures)
        self.metrics.stalled.labels(what).set(0)
        self.stalled.discard(what)


def observe_all(histogram: Histogram, values: Iterable[float]) -> None:
    """Observe every value (a batch's worth, in one place)."""
    for value in values:
        histogram.observe(value)


def count_labels(counter: Counter, labels: Iterable[str]) -> None:
    """Add one per item of `labels` to the counter's children, one `inc` per distinct label:
    called per batch, as `labels()` costs too much to call per event."""
    for label, n in Tally(labels).items():
        counter.labels(label).inc(n)


def sample_of(metrics: Metrics, at: float) -> Sample:
    """The counters the dashboard shows (`stream.core.live`), read from the metrics now."""

    def totals(counter: Counter, label: str) -> dict[str, float]:
        return {s.labels[label]: s.value for s in counter.collect()[0].samples if s.name.endswith("_total")}

    [out] = [s.value for s in metrics.attributions_out.collect()[0].samples if s.name.endswith("_total")]
    buckets = [
        (float(s.labels["le"]), s.value)
        for s in metrics.latency_seconds.collect()[0].samples
        if s.name.endswith("_bucket")
    ]
    return Sample(at, totals(metrics.events_in, "type"), totals(metrics.dlq, "reason"), out, buckets)
