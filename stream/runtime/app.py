"""The worker: a Faust app built by a factory from one `Settings` (no import-time app).

One batch handler (fed whole fetched batches by the batch consumer, not by Faust agents),
`stream.runtime.pipeline`, reading partition P of both topics together:
    touchpoints.raw P --validate, route--> applied here when the person's partition is P,
                                          else re-keyed to <app>-touchpoints.persons | dlq
    <app>-touchpoints.persons P + those --load / step / fenced store--> attribution.*, touchpoints.sessions
Timers: sweep (ask due persons of the owned partitions to close idle sessions / expire
journeys); models (refresh the data-driven snapshot from the path counts; also POST
/models/refresh when TOUCHSTREAM_WEB_ACTIONS is on); the consumer lag
(`stream.runtime.lag`, asked of the broker every 5 s).

Everything transient (Redis or the broker away) is retried by one `RetryPolicy`; anything
else that fails in a handler crashes the worker, which restarts from the committed offsets.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from stream.adapters.kafka.clients import LagProbe
from stream.adapters.kafka.consumer import BatchApp
from stream.adapters.kafka.emitter import Emitter
from stream.adapters.kafka.security import aiokafka_options, faust_credentials
from stream.adapters.kafka.topics import persons_topic, topic_name
from stream.adapters.redis.aggregates import PartitionStore
from stream.adapters.redis.connection import ObservedCluster, Ttls, connect
from stream.adapters.redis.directory import Directory
from stream.adapters.redis.persons import PersonStore
from stream.adapters.redis.replication import ReplicationBarrier
from stream.core.codec import decode_event
from stream.core.config import DAY_MS, Limits
from stream.core.live import LiveWindow
from stream.core.records import Event, RawRecord
from stream.core.topics import RAW
from stream.core.validation import Rejection, validate
from stream.runtime.ingest import Ingestor
from stream.runtime.journeys import JourneyProcessor
from stream.runtime.lag import LagMeter
from stream.runtime.metrics import MeteredRetries, Metrics, sample_of
from stream.runtime.models import ModelKeeper
from stream.runtime.pipeline import Pipeline
from stream.runtime.retry import RetryPolicy
from stream.runtime.sweeper import Sweeper
from stream.runtime.web import register_pages
from stream.settings import Settings

LIVE_INTERVAL_S = 2.0


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> BatchApp:
    """Build the Faust app: the batch handler, the timers, `/metrics`, `/models/refresh` and
    the pages of `stream.runtime.web` (`/health`, `/ready`, `/api/report`)."""
    registry = registry or CollectorRegistry()
    metrics = Metrics.create(registry)
    app = faust_app(settings, metrics)
    setup_prometheus_sensors(app, registry=registry, name_prefix="faust")
    # Faust's per-event runtime (ms): batches never pass Faust's event path, so it would stay
    # at 0, and its name breaks Prometheus' conventions (`promtool check metrics`)
    registry.unregister(app.monitor._metrics.events_runtime_latency)
    parts = Parts.build(app, settings, metrics)
    register_handlers(app, settings, parts)
    register_timers(app, settings, parts)
    register_pages(app, settings, parts)
    return app


def faust_app(settings: Settings, metrics: Metrics) -> BatchApp:
    """The Faust app and its Kafka client settings."""

    def observe_alignment(topic: str, skew_ms: int, holding: int) -> None:
        metrics.partition_skew_seconds.labels(topic).set(skew_ms / 1000)
        metrics.partitions_holding.labels(topic).set(holding)

    return BatchApp(
        settings.app_id,
        alignment=(settings.align_ms, max(settings.batch_size, 1000)),
        observe_alignment=observe_alignment,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        broker_credentials=faust_credentials(settings),
        broker_session_timeout=settings.kafka_session_timeout_ms / 1000,
        broker_commit_interval=settings.commit_interval_ms / 1000,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_ms / 3000),
        broker_max_poll_records=settings.batch_size,
        # acks from every in-sync replica; the transport's producer adds idempotence
        # (`stream.adapters.kafka.producer`): a broker's crash neither loses nor repeats a write
        producer_acks=-1,
        producer_linger_ms=0,  # the Emitter submits whole batches: nothing to wait for
        producer_max_batch_size=512 * 1024,  # Emitter sends a batch per partition
        worker_redirect_stdouts=False,
        # Faust's table directory: Touchstream keeps no Faust tables, so it only must not
        # litter the working directory
        datadir=settings.data_dir or str(Path(tempfile.gettempdir()) / f"touchstream-{settings.app_id}"),
    )


@dataclass(frozen=True)
class Parts:
    """The worker's pieces, wired once: the stores, the emitter and the handlers' objects."""

    metrics: Metrics
    pipeline: Pipeline
    models: ModelKeeper
    sweeper: Sweeper
    retry: RetryPolicy
    retries: MeteredRetries
    lag: LagMeter
    live: LiveWindow
    worker_id: str

    @classmethod
    def build(cls, app: BatchApp, settings: Settings, metrics: Metrics) -> Parts:
        config = settings.config()
        worker_id = settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"
        emitter = Emitter(lambda: app.producer._ensure_producer(), partial(topic_name, settings), worker_id)
        redis = connect(settings.redis_url, cluster=settings.redis_cluster)
        if isinstance(redis, ObservedCluster):
            redis.on_internal = lambda reason: metrics.redis_client_retries.labels(reason).inc()
        prefix = settings.redis_prefix
        ttls = Ttls(
            config.rules.longest + DAY_MS,
            settings.conversion_ttl_ms,
            settings.outbox_ttl_ms,
            identity_ms=settings.identity_ttl_ms,
        )
        persons = PersonStore(
            redis, ttls, cached_states=settings.state_cache, credit_models=config.credit_models, prefix=prefix
        )
        aggregates = PartitionStore(
            redis, ttls, settings.max_paths, reports=settings.report_limits(), prefix=prefix
        )
        models = ModelKeeper(aggregates, emitter, settings.partitions, settings.markov_order)
        raw_topic = settings.topic(RAW)
        pipeline = Pipeline(
            Ingestor(settings.limits(), metrics, Directory(redis, ttls, prefix=prefix)),
            JourneyProcessor(persons, aggregates, emitter, config, metrics, models, raw_topic),
            emitter,
            aggregates,
            raw_topic,
            ReplicationBarrier(
                redis,
                ttls,
                settings.replicas_to_wait,
                settings.redis_replica_timeout_ms,
                prefix=prefix,
                auto=settings.redis_replicas is None,
            )
            if settings.replicas_to_wait
            else None,
        )
        return cls(
            metrics=metrics,
            pipeline=pipeline,
            models=models,
            sweeper=Sweeper(
                aggregates, emitter, config.rules, settings.partitions, settings.idle_partition_ms
            ),
            retry=RetryPolicy(),
            retries=MeteredRetries(metrics),
            lag=LagMeter(
                partial(LagProbe, settings.kafka_bootstrap_servers, aiokafka_options(settings)),
                settings.app_id,
                lambda: app.consumer.assignment(),
                metrics.consumer_lag,
            ),
            live=LiveWindow(),
            worker_id=worker_id,
        )


def register_handlers(app: BatchApp, settings: Settings, parts: Parts) -> None:
    """The handler gets whole fetched batches of both topics, aligned by event time across
    all their partitions; each batch is retried while Redis or the broker is away (it is
    idempotent)."""
    raw = app.topic(settings.topic(RAW), key_serializer="raw", value_serializer="raw")
    persons = app.topic(persons_topic(settings), key_serializer="raw", value_serializer="raw")

    @app.batch_handler((raw, partial(raw_decoder, settings.limits())), (persons, persons_decoder), align=True)
    async def journeys(batch: list[RawRecord]) -> None:
        await parts.retry.run(partial(parts.pipeline.handle, batch), "journeys", parts.retries)


def raw_decoder(
    limits: Limits, value: bytes | None, timestamp_ms: int
) -> tuple[Event | Rejection, int | None]:
    """A raw value validated as it is fetched, and its event time (the consumer aligns the raw
    partitions by it). A `ts` is bounded by the record's Kafka timestamp, not by the clock: a
    record read again after a crash is judged the same way (were it rejected once and applied
    the next time, the path-count fence would have passed it)."""
    decoded = validate(value, limits, timestamp_ms)
    return decoded, decoded.ts if isinstance(decoded, Event) else None


def persons_decoder(value: bytes | None, _timestamp_ms: int = 0) -> tuple[Event | None, int | None]:
    """A person-keyed value decoded as it is fetched, and its event time: the consumer aligns
    the person-keyed partitions by it too, so that an `expire` (stamped with the low
    watermark) waits for the identify on another partition that would merge its journey
    first. A `close_idle` (stamped with the wall clock) never waits. A value that does not
    decode is left to the handler (which fails on it, as on any corrupt internal record)."""
    try:
        event = decode_event(value or b"")
    except (TypeError, ValueError):
        return None, None
    return event, None if event.type == "close_idle" else event.ts


def register_timers(app: BatchApp, settings: Settings, parts: Parts) -> None:
    """The sweeper, the model refresh (timer and `/models/refresh`) and the snapshot at start."""
    persons = persons_topic(settings)

    @app.on_partitions_assigned.connect
    async def count_owned(sender: BatchApp, assigned: set[TP], **kwargs: object) -> None:
        parts.metrics.owned_partitions.set(sum(tp.topic == persons for tp in assigned))
        parts.pipeline.aggregates.forget_fences()  # another worker may have moved them meanwhile

    app.service(parts.lag)  # started and stopped with the app, on its event loop

    @app.timer(LIVE_INTERVAL_S)
    async def sample_live() -> None:
        """The dashboard's rates and latency (`/api/live`) from the counters, every 2 s."""
        parts.live.add(sample_of(parts.metrics, time.monotonic()))  # rates immune to clock steps

    @app.task
    async def load_model_snapshot() -> None:
        await parts.retry.run(parts.models.load, "models", parts.retries)

    @app.timer(settings.model_refresh_ms / 1000)
    async def refresh_models() -> None:
        await parts.retry.run(parts.models.refresh, "models", parts.retries)

    if settings.web_actions:  # state-changing: off unless TOUCHSTREAM_WEB_ACTIONS

        @app.page("/models/refresh")
        class RefreshModels(View):
            """On-demand refresh: recompute the snapshot from the path counts now, return it
            as its `attribution.models` values (`[]` before any path is counted). POST only,
            so that no page a browser merely visits can set it off."""

            async def post(self, request: Request) -> Response:
                snapshot = await parts.models.refresh()
                return self.json(snapshot.published() if snapshot else [])

    @app.timer(settings.sweep_interval_ms / 1000)
    async def sweep() -> None:
        owned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == persons)
        await parts.retry.run(lambda: parts.sweeper.sweep(owned), "sweep", parts.retries)
