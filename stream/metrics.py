"""Touchstream's Prometheus metrics, created against a registry passed in.

Faust's own metrics come from `faust.sensors.prometheus` on the same
registry; together they are served on the worker's `/metrics` page.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)
BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000)


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
    latency_ms: Histogram
    retries: Counter
    stalled: Gauge
    identity_conflicts: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "touchstream") -> Metrics:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{prefix}_{name}", doc, labels, registry=registry)

        return cls(
            events_in=counter("events_in", "Valid input events by type", ("type",)),
            dlq=counter("dlq", "Values sent to the dead-letter topic by reason", ("reason",)),
            attributions_out=counter("attributions_out", "Attribution events emitted (incl. replays)"),
            sessions_out=counter("sessions_out", "Closed sessions emitted", ("closed_by",)),
            replayed=counter("replayed_events", "Events already applied (fenced), outputs re-emitted"),
            duplicates=counter("duplicate_events", "Events skipped because their event_id was seen"),
            refused_writes=counter("refused_writes", "Person writes refused by the fence (stale version)"),
            batch_size=Histogram(
                f"{prefix}_batch_size",
                "Events per processing batch",
                ("agent",),
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            identity_conflicts=counter(
                "identity_conflicts",
                "identify events refused: the anonymous id is mapped to another customer",
            ),
            retries=counter(
                "retries", "Transient failures retried (Redis or broker unavailable)", ("operation",)
            ),
            stalled=Gauge(
                f"{prefix}_stalled",
                "1 while an operation is waiting for Redis or the broker to come back",
                ("operation",),
                registry=registry,
            ),
            latency_ms=Histogram(
                f"{prefix}_latency_ms",
                "Conversion produced to attribution emitted, milliseconds",
                buckets=LATENCY_BUCKETS_MS,
                registry=registry,
            ),
        )


def count_labels(counter: Counter, labels: Iterable[str]) -> None:
    """Add one per item of `labels` to the counter's children, one `inc` per distinct label:
    called per batch, as `labels()` costs too much to call per event."""
    for label, n in Tally(labels).items():
        counter.labels(label).inc(n)
