"""One Redis client per worker, and a deadline per round trip.

redis-py's socket timeout arms a timer per reply; the stores instead bound each whole
round trip (a pipeline, or one command) with one `asyncio.timeout`. A `TimeoutError` is
transient (the runtime's retry policy retries the batch), like redis-py's own
`ConnectionError`.

Commands are packed by hiredis in C, as redis-py's synchronous client does when hiredis is
installed; its asyncio connections pack in Python, one join per argument, which was a
tenth of a worker's CPU (bench/profile.py).

Lua scripts go on pipelines as bare `EVALSHA` (`Lua.queue`). redis-py's `Script` makes a
pipeline that runs one ask `SCRIPT EXISTS` first, a round trip of its own every time (a
batch's three pipelined scripts cost three extra round trips). Here a store loads the
project's scripts before its first round trip; should Redis answer NOSCRIPT later
(restarted or flushed since), the round trip fails as transient, and the retried batch
loads them all again first and is applied whole, as after any partial failure (the writes
are fenced: a retry applies nothing twice).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import NoScriptError

from stream.adapters.redis.keys import script, scripts
from stream.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ttls:
    journey_ms: int
    conversion_ms: int
    outbox_ms: int
    paths_ms: int = 400 * 24 * 3600 * 1000
    identity_ms: int = 365 * 24 * 3600 * 1000


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


@dataclass(frozen=True)
class Lua:
    """A Lua script (`stream/adapters/redis/lua/<name>.lua`) queued on pipelines by its SHA."""

    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        pipe.evalsha(self.sha, len(keys), *keys, *args)


class RoundTrips:
    """Base of the stores: a client, the deadline of one round trip, the Lua scripts."""

    def __init__(self, redis: Redis, ttls: Ttls, timeout_s: float = 5.0) -> None:
        self.redis = redis
        self.ttls = ttls
        self.timeout_s = timeout_s
        self._loaded = False

    def lua(self, name: str) -> Lua:
        """The script `name`, loaded by `run` (with all the others) before the first round
        trip and whenever Redis has lost it."""
        return Lua(script(name))

    async def run(self, pipe: Any) -> list[Any]:
        """Execute a pipeline within the deadline. The pipeline gives its connection back to
        the pool whatever happens: redis-py keeps it when loading the pipeline's scripts
        fails (Redis away), and would complain of an unclosed pipeline later."""
        try:
            if not self._loaded:
                for source in scripts():
                    await self.call(self.redis.script_load(source))
                self._loaded = True
            return await self.call(pipe.execute())
        except NoScriptError as exc:
            self._loaded = False
            lost = "Redis has lost its Lua scripts (restarted, flushed): loading them again"
            raise TransientError(lost) from exc
        finally:
            await pipe.reset()

    async def call(self, command: Awaitable[T]) -> T:
        async with asyncio.timeout(self.timeout_s):
            return await command

    def pipeline(self) -> Any:
        return self.redis.pipeline(transaction=False)
