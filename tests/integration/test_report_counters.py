"""The report counters in a real Redis: summed past the fence, compare-and-set on it, the
cap folding new counters into (other), expiry by retention."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from stream.adapters.redis.aggregates import PartitionBatch, PartitionStore
from stream.adapters.redis.connection import Ttls
from stream.adapters.redis.keys import partition_key
from stream.core.config import ReportLimits
from stream.core.counters import Count
from stream.errors import TransientError

pytestmark = pytest.mark.integration
TODAY = time.strftime("%Y-%m-%d", time.gmtime())


def count(name: str, amount: int, day: str = TODAY) -> Count:
    return Count(day, f"c|{name}", "c|(other)", amount)


def batch(last: int, *counts: tuple[int, Count]) -> PartitionBatch:
    return PartitionBatch(0, "paths-fence", last, [], list(counts))


def test_counters_are_summed_past_the_fence_capped_and_fenced(services) -> None:
    _, url = services
    redis_sync.Redis.from_url(url).flushdb()

    async def run() -> tuple[dict, dict, int, str]:
        client = Redis.from_url(url)
        store = PartitionStore(client, Ttls(10**10, 10**10, 10**10), reports=ReportLimits(400, 3))
        await store.add_aggregates([batch(2, (1, count("a", 5)), (2, count("a", 2)), (2, count("b", 1)))], {})
        # a redelivery of offsets 1-2 and a new offset 3: only offset 3 counts
        await store.add_aggregates([batch(3, (1, count("a", 5)), (2, count("a", 2)), (3, count("c", 1)))], {})
        # the hash holds 3 counters: new ones fold into (other), existing ones still count
        await store.add_aggregates([batch(4, (4, count("d", 4)), (4, count("e", 6)), (4, count("a", 1)))], {})
        first = await client.hgetall(partition_key(0, f"report:{TODAY}"))
        # another worker moves the fence (a rebalance): this one's next write is refused whole
        await client.set(partition_key(0, "paths-fence"), 9)
        with pytest.raises(TransientError, match="moved"):
            await store.add_aggregates([batch(5, (5, count("a", 100)))], {})
        await store.add_aggregates([batch(10, (5, count("a", 100)), (10, count("a", 1)))], {})  # the retry
        second = await client.hgetall(partition_key(0, f"report:{TODAY}"))
        ttl = await client.pttl(partition_key(0, f"report:{TODAY}"))
        fence = await client.get(partition_key(0, "paths-fence"))
        await client.aclose()
        return first, second, ttl, fence

    first, second, ttl, fence = asyncio.run(run())
    assert first == {b"c|a": b"8", b"c|b": b"1", b"c|c": b"1", b"c|(other)": b"10"}
    assert second[b"c|a"] == b"9"  # offset 5 was below the moved fence: only offset 10 counted
    assert fence == b"10"
    assert 399 * 86_400_000 < ttl <= 401 * 86_400_000  # kept the retention after its day


def test_counters_of_days_past_the_retention_are_left_out(services) -> None:
    _, url = services
    redis_sync.Redis.from_url(url).flushdb()

    async def run() -> list:
        client = Redis.from_url(url)
        store = PartitionStore(client, Ttls(10**10, 10**10, 10**10), reports=ReportLimits(30, 100))
        await store.add_aggregates([batch(1, (1, count("a", 1, "2001-01-01")), (1, count("a", 1)))], {})
        keys = sorted(await client.keys(partition_key(0, "report:*")))
        await client.aclose()
        return keys

    assert asyncio.run(run()) == [partition_key(0, f"report:{TODAY}").encode()]
