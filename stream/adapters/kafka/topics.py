"""Kafka topic names and creation.

Public topics (`stream.core.topics.PUBLIC`) carry the configured prefix; the
person-keyed topic is internal to the Faust app id. `ensure_topics` creates whatever is
missing, with `TOUCHSTREAM_PARTITIONS` partitions and `TOUCHSTREAM_REPLICATION_FACTOR`
replicas, so a worker, the simulator and the tests can start against an empty broker,
and `touchstream topics create` can provision a production cluster beforehand. A topic
that exists is left as it is.

The topics a worker reads (the raw topic and the person-keyed one) are created with
`message.timestamp.type=LogAppendTime`: Kafka's time-based retention goes by record
timestamps, and a producer that stamps records with their event time (a backfill of
last quarter's events) would otherwise see them deleted before any worker reads them.
Touchstream orders and ages events by their `ts` field, never by the record timestamp.

`attribution.models` is compacted: keyed by model name, its latest value per model is the
current snapshot, kept however old (a consumer starting late still finds it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from stream.adapters.kafka.security import aiokafka_options
from stream.core.topics import MODELS, PERSONS, PUBLIC, RAW
from stream.settings import Settings

APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
COMPACTED = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class TopicState:
    """A topic of Touchstream's as `ensure_topics` or `describe_topics` found it."""

    name: str
    status: str  # "created" (just now), "exists" or "missing"
    partitions: int = 0
    replication_factor: int = 0


def persons_topic(settings: Settings) -> str:
    """Internal topic: validated events keyed by person id."""
    return f"{settings.topic_prefix}{settings.app_id}-touchpoints.persons"


def topic_name(settings: Settings, logical: str) -> str:
    """The Kafka topic of a logical name: the person-keyed topic, or a public one with the prefix."""
    return persons_topic(settings) if logical == PERSONS else settings.topic(logical)


def all_topics(settings: Settings) -> list[str]:
    return [settings.topic(name) for name in PUBLIC] + [persons_topic(settings)]


@contextlib.asynccontextmanager
async def _admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client; raises aiokafka's `KafkaConnectionError` when no broker answers."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_options(settings)
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def _found(admin: AIOKafkaAdminClient, settings: Settings) -> dict[str, TopicState]:
    """Touchstream's topics that exist, with their partitions and replication factor."""
    wanted = set(all_topics(settings))
    found = {}
    for topic in await admin.describe_topics():  # metadata of every topic: never auto-creates one
        if topic["topic"] in wanted and topic["error_code"] == 0:
            partitions = topic["partitions"]
            replicas = max((len(p["replicas"]) for p in partitions), default=0)
            found[topic["topic"]] = TopicState(topic["topic"], "exists", len(partitions), replicas)
    return found


def _check_created(response: Any) -> None:
    """Raise the broker's error for a topic it refused (a bad replication factor, a
    policy, an authorisation); a topic another client created meanwhile is no error."""
    for name, code, *message in response.topic_errors:
        error = for_code(code)
        if code and error is not TopicAlreadyExistsError:
            raise error(f"cannot create topic {name}: {message[0] if message else ''}".rstrip(": "))


async def ensure_topics(settings: Settings, configs: Mapping[str, str] | None = None) -> list[TopicState]:
    """Create the missing topics with `settings.partitions` partitions, `settings.replication_factor`
    replicas and the topic `configs` given (such as `retention.ms`); every topic's state, in
    `all_topics` order. Raises aiokafka's error if the broker refuses a topic."""
    async with _admin(settings) as admin:
        found = await _found(admin, settings)
        missing = [name for name in all_topics(settings) if name not in found]
        own = {settings.topic(RAW): APPEND_TIME, persons_topic(settings): APPEND_TIME}
        own[settings.topic(MODELS)] = COMPACTED
        if missing:
            new = [
                NewTopic(
                    name,
                    settings.partitions,
                    settings.replication_factor,
                    topic_configs={**(configs or {}), **own.get(name, {})},
                )
                for name in missing
            ]
            _check_created(await admin.create_topics(new))
    return [
        found.get(name) or TopicState(name, "created", settings.partitions, settings.replication_factor)
        for name in all_topics(settings)
    ]


async def describe_topics(settings: Settings) -> list[TopicState]:
    """Every topic of Touchstream's as the broker has it ("exists" or "missing")."""
    async with _admin(settings) as admin:
        found = await _found(admin, settings)
    return [found.get(name) or TopicState(name, "missing") for name in all_topics(settings)]
