"""The Faust app, built by a factory from one `Settings` (no import-time app).

Batch handlers (fed whole fetched batches by stream/consumer.py, not by Faust agents):
    ingest    touchpoints.raw --validate--> <app>-touchpoints.persons (keyed by person) | touchpoints.dlq
    journeys  <app>-touchpoints.persons --load / step / fenced store--> attribution.*, touchpoints.sessions
    timers    sweep: ask due persons of the owned partitions to close idle sessions / expire journeys
              models: refresh the data-driven snapshot from the path counts (also GET /models/refresh)
"""

from __future__ import annotations

import os
import socket
import tempfile
from functools import partial
from pathlib import Path

import orjson
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from stream.attribution.snapshot import Snapshot
from stream.consumer import BatchApp
from stream.emitter import Emitter
from stream.events import Limits
from stream.metrics import Metrics
from stream.output import PERSONS
from stream.person import Config
from stream.records import RawRecord
from stream.retry import Backoff, retrying
from stream.security import faust_credentials
from stream.settings import Settings
from stream.store import JourneyStore, Ttls
from stream.topics import RAW, persons_topic
from stream.worker import Ingestor, JourneyProcessor, ModelKeeper, Sweeper


def topic_name(settings: Settings, logical: str) -> str:
    """Where an output goes: the person-keyed topic, or a public topic with the prefix."""
    return persons_topic(settings) if logical == PERSONS else settings.topic(logical)


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> BatchApp:
    """Build the Faust app with both agents, the idle-session timer and `/metrics`."""
    registry = registry or CollectorRegistry()
    app = BatchApp(
        settings.app_id,
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
        producer_linger_ms=0,  # the Emitter submits whole batches: nothing to wait for
        producer_max_batch_size=512 * 1024,  # Emitter sends a batch per partition
        worker_redirect_stdouts=False,
        # Faust's table directory: Touchstream keeps no Faust tables, so it only must not
        # litter the working directory
        datadir=settings.data_dir or str(Path(tempfile.gettempdir()) / f"touchstream-{settings.app_id}"),
    )
    setup_prometheus_sensors(app, registry=registry, name_prefix="faust")
    metrics = Metrics.create(registry)
    config = Config.from_settings(settings)
    worker_id = settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"
    raw = app.topic(settings.topic(RAW), key_serializer="raw", value_serializer="raw")
    persons = app.topic(persons_topic(settings), key_serializer="raw", value_serializer="raw")
    emitter = Emitter(lambda: app.producer._ensure_producer(), partial(topic_name, settings), worker_id)
    store = JourneyStore(
        Redis.from_url(settings.redis_url, socket_timeout=None),  # the store times round trips
        Ttls(config.rules.longest + 86_400_000, settings.conversion_ttl_ms, settings.outbox_ttl_ms),
        settings.max_paths,
        cached_states=settings.state_cache,
    )
    limits = Limits(settings.max_value_bytes, settings.max_context_bytes, settings.max_future_skew_ms)
    ingestor = Ingestor(emitter, limits, metrics, store)
    models = ModelKeeper(store, emitter, settings.partitions, settings.markov_order)
    processor = JourneyProcessor(store, emitter, config, metrics, models)
    sweeper = Sweeper(store, emitter, config.rules)

    @app.task
    async def load_model_snapshot() -> None:
        raw_snapshot = await store.current_snapshot()
        if raw_snapshot and models.current is None:
            models.current = Snapshot.from_doc(orjson.loads(raw_snapshot))

    @app.timer(settings.model_refresh_ms / 1000)
    async def refresh_models() -> None:
        await retrying(models.refresh, "models", backoff, metrics)

    @app.page("/models/refresh")
    async def refresh_models_now(web: View, request: Request) -> Response:
        """On-demand refresh: recompute the snapshot from the path counts now and return it."""
        snapshot = await models.refresh()
        return web.json(snapshot.doc() if snapshot else {"snapshot_id": None})

    backoff = Backoff()

    # Both handlers get whole fetched batches (stream/consumer.py); a failure that is not
    # transient is a bug and crashes the worker, which restarts from the committed offsets.
    @app.batch_handler(raw)
    async def ingest(batch: list[RawRecord]) -> None:
        await retrying(partial(ingestor.handle, batch), "ingest", backoff, metrics)

    @app.batch_handler(persons)
    async def journeys(batch: list[RawRecord]) -> None:
        await retrying(partial(processor.handle, batch), "journeys", backoff, metrics)

    @app.timer(settings.sweep_interval_ms / 1000)
    async def sweep() -> None:
        name = persons.get_topic_name()
        owned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == name)
        await retrying(lambda: sweeper.sweep(owned), "sweep", backoff, metrics)

    return app
