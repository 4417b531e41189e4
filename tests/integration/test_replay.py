"""Crash between the Redis write and the produce, then a redelivery with different batch
boundaries: the stored outputs and path counts are re-emitted / applied exactly once.

Real redis-server; the Kafka side is an emitter that fails on demand (the crash point)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis as redis_sync
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from stream.adapters.redis.aggregates import PartitionStore
from stream.adapters.redis.connection import Ttls
from stream.adapters.redis.keys import partition_key
from stream.adapters.redis.persons import PersonStore
from stream.core.codec import encode_event
from stream.core.config import Config
from stream.core.output import Message, conversion_messages
from stream.core.records import Event, RawRecord
from stream.core.topics import CONVERSIONS, CREDITS
from stream.errors import TransientError
from stream.runtime.journeys import JourneyProcessor
from stream.runtime.metrics import Metrics
from tests.support.events import HOUR

pytestmark = pytest.mark.integration


class Crash(Exception):
    pass


class FlakyEmitter:
    """Collects what would be produced; raises (a crash before delivery) while `down`."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.down = False

    async def emit(self, messages, timestamp=None) -> None:
        if self.down:
            raise Crash
        self.sent += messages


def record(offset: int, event: Event) -> RawRecord:
    return RawRecord("persons", 0, offset, event.person_id.encode(), encode_event(event), 0.0)


def journeys(client: Redis, emitter: FlakyEmitter, raw_topic: str = "") -> JourneyProcessor:
    """A processor over real Redis, the linear model only, the emitter that fails on demand."""
    ttls = Ttls(10**10, 10**10, 10**10)
    return JourneyProcessor(
        PersonStore(client, ttls),
        PartitionStore(client, ttls),
        emitter,  # type: ignore[arg-type]
        Config(models=("linear",)),
        Metrics.create(CollectorRegistry()),
        raw_topic=raw_topic,
    )


def test_replay_with_new_batch_boundaries_loses_nothing(services) -> None:
    _, url = services
    redis_sync.Redis.from_url(url).flushdb()

    async def run() -> tuple[FlakyEmitter, dict]:
        client = Redis.from_url(url)
        emitter = FlakyEmitter()
        processor = journeys(client, emitter)
        touch = Event("i1", "interaction", 1000 * HOUR, "P", channel="email")
        conversion = Event(
            "c1", "conversion", 1001 * HOUR, "P", conversion="purchase", conversion_id="o1", value=10.0
        )
        later = Event("i2", "interaction", 1002 * HOUR, "P", channel="display")
        await processor.handle([record(1, touch)])
        emitter.down = True
        with pytest.raises(Crash):
            await processor.handle([record(2, conversion)])  # stored in Redis, never produced
        emitter.down = False
        await processor.handle([record(2, conversion), record(3, later)])  # redelivered, bigger batch
        paths = await client.hgetall(partition_key(0, "paths"))
        await client.aclose()
        return emitter, paths

    emitter, paths = asyncio.run(run())
    assert sum(m.topic == CONVERSIONS for m in emitter.sent) == 1  # re-emitted from the outbox
    # with its credit row, derived again from the stored conversion value (the outbox keeps
    # no credit rows): the one email touch, under the one model
    (conversion,) = [m for m in emitter.sent if m.topic == CONVERSIONS]
    assert [m for m in emitter.sent if m.topic == CREDITS] == conversion_messages(
        orjson.loads(conversion.value)
    )[1:]
    assert sum(m.topic == CREDITS for m in emitter.sent) == 1
    assert paths[b"c|email"] == b"1" and paths[b"v|email"] == b"10000000"  # counted exactly once


def test_events_read_from_both_topics_are_fenced_apart(services) -> None:
    """A person's events come from its raw partition (applied where read) and from its
    person-keyed partition (re-keyed to it), with offsets that repeat across the two: each
    source has its own fence, outbox positions and path-count fence."""
    _, url = services
    redis_sync.Redis.from_url(url).flushdb()

    def raw(offset: int, event: Event) -> RawRecord:  # as the ingest hands it on: no value
        return RawRecord("raw", 0, offset, event.person_id.encode(), None, 0.0, event)

    email = Event("i1", "interaction", 1000 * HOUR, "P", channel="email")
    display = Event("i2", "interaction", 1001 * HOUR, "P", channel="display")
    conversion = Event(
        "c1", "conversion", 1002 * HOUR, "P", conversion="purchase", conversion_id="o1", value=10.0
    )
    later = Event("i3", "interaction", 1003 * HOUR, "P", channel="sms")

    async def run() -> tuple[list[Message], dict, list[bytes | None]]:
        client = Redis.from_url(url)
        emitter = FlakyEmitter()
        processor = journeys(client, emitter, raw_topic="raw")
        await processor.handle([raw(1, email), record(1, display)])  # offset 1 of each: both apply
        emitter.down = True
        with pytest.raises(Crash):
            await processor.handle([raw(2, conversion)])  # stored in Redis, never produced
        emitter.down = False
        redelivered = [record(1, display), raw(2, conversion), raw(3, later)]
        await processor.handle(redelivered)
        sent = list(emitter.sent)
        await processor.handle(redelivered)  # once more: all of it applied before
        paths = await client.hgetall(partition_key(0, "paths"))
        fences = await client.mget([partition_key(0, "paths-fence"), partition_key(0, "paths-fence:raw")])
        await client.aclose()
        return sent, paths, fences

    sent, paths, fences = asyncio.run(run())
    (conversion,) = [orjson.loads(m.value) for m in sent if m.topic == CONVERSIONS]  # from the outbox
    assert [t["channel"] for t in conversion["touchpoints"]] == ["email", "display"]
    assert conversion["models"]["linear"]["shares"] == [0.5, 0.5]
    assert paths[b"c|email > display"] == b"1"  # counted exactly once
    assert fences == [b"1", b"3"]


def test_a_redis_that_lost_its_scripts_fails_the_batch_as_transient_and_the_retry_applies_it_once(
    services,
) -> None:
    """Scripts are queued on pipelines as bare EVALSHA. After SCRIPT FLUSH (as after a Redis
    restart) the batch fails with a transient error, the scripts are loaded again, and the
    batch retried whole applies each event, path count and output once."""
    _, url = services
    redis_sync.Redis.from_url(url).flushdb()
    touch = Event("i1", "interaction", 1000 * HOUR, "P", channel="email")
    conversion = Event(
        "c1", "conversion", 1001 * HOUR, "P", conversion="purchase", conversion_id="o1", value=10.0
    )

    async def run() -> tuple[FlakyEmitter, dict, str]:
        client = Redis.from_url(url)
        emitter = FlakyEmitter()
        processor = journeys(client, emitter)
        await processor.handle([record(1, touch)])
        await client.script_flush()
        with pytest.raises(TransientError) as failed:
            await processor.handle([record(2, conversion)])
        await processor.handle([record(2, conversion)])  # the retry
        await processor.handle([record(2, conversion)])  # and a redelivery: nothing new
        paths = await client.hgetall(partition_key(0, "paths"))
        await client.aclose()
        return emitter, paths, str(failed.value)

    emitter, paths, reason = asyncio.run(run())
    assert "lost its Lua scripts" in reason
    # the redelivery re-emits it from the outbox, byte for byte, unless the outbox entry was
    # already dropped as delivered (that runs in the background)
    sent = {m.value for m in emitter.sent if m.topic == CONVERSIONS}
    assert len(sent) == 1
    (conversion,) = [orjson.loads(v) for v in sent]
    assert conversion["conversion"]["conversion_id"] == "o1"
    assert conversion["models"]["linear"]["shares"] == [1.0]
    assert paths[b"c|email"] == b"1" and paths[b"v|email"] == b"10000000"  # counted once
