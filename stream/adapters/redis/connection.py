"""One Redis client per worker, and a deadline per round trip.

redis-py's socket timeout arms a timer per reply; the stores instead bound each whole
round trip (a pipeline, or one command) with one `asyncio.timeout`. A `TimeoutError` is
transient (the runtime's retry policy retries the batch), like redis-py's own
`ConnectionError`.

Commands are packed by hiredis in C, as redis-py's synchronous client does when hiredis is
installed; its asyncio connections pack in Python, one join per argument, which was a
tenth of a worker's CPU (bench/profile.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ttls:
    journey_ms: int
    conversion_ms: int
    outbox_ms: int
    paths_ms: int = 400 * 24 * 3600 * 1000


def connect(url: str) -> Redis:
    """The worker's client: no per-reply socket timeout (the stores time round trips);
    commands packed by hiredis."""
    client = Redis.from_url(url, socket_timeout=None)
    pool = client.connection_pool
    pool.connection_class = _packed_by_hiredis(pool.connection_class)  # TCP, TLS or unix socket
    return client


_PACKER = HiredisRespSerializer()


def _packed_by_hiredis(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    def pack_command(self: AbstractConnection, *args: Any) -> list[bytes]:
        return _PACKER.pack(*args)  # type: ignore[no-any-return]

    return type(connection_class.__name__, (connection_class,), {"pack_command": pack_command})


class RoundTrips:
    """Base of the stores: a client and the deadline of one round trip."""

    def __init__(self, redis: Redis, ttls: Ttls, timeout_s: float = 5.0) -> None:
        self.redis = redis
        self.ttls = ttls
        self.timeout_s = timeout_s

    async def run(self, pipe: Any) -> list[Any]:
        """Execute a pipeline within the deadline. The pipeline gives its connection back to
        the pool whatever happens: redis-py keeps it when loading the pipeline's scripts
        fails (Redis away), and would complain of an unclosed pipeline later."""
        try:
            return await self.call(pipe.execute())
        finally:
            await pipe.reset()

    async def call(self, command: Awaitable[T]) -> T:
        async with asyncio.timeout(self.timeout_s):
            return await command

    def pipeline(self) -> Any:
        return self.redis.pipeline(transaction=False)
