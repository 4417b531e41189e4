"""One Redis client per worker (a single server, or a Redis Cluster), and a deadline per round trip.

redis-py's socket timeout arms a timer per reply; the stores instead bound each whole
round trip (a pipeline, or one command) with one `asyncio.timeout`. A `TimeoutError` is
transient (the runtime's retry policy retries the batch), like redis-py's own
`ConnectionError`.

Commands are packed by hiredis in C, as redis-py's synchronous client does when hiredis is
installed; its asyncio connections pack in Python, one join per argument, which was a
tenth of a worker's CPU (bench/profile.py).

With `TOUCHSTREAM_REDIS_CLUSTER` on, the client is redis-py's `RedisCluster`, found from
the seed URL(s): its pipelines (never transactions) send each command to the primary of
its key's slot, every node's share at once; a script's keys share one slot (`keys.py`).
MOVED and ASK redirections, and a failover's connection errors, are retried inside the
client (it refreshes the slot map); `ObservedCluster` reports each to the worker's
`touchstream_redis_client_retries_total{reason}` and logs a summary line at most every
10 s. What still fails reaches the runtime's retry policy as transient
(`stream.runtime.retry.is_transient`), which logs and counts it.

Lua scripts go on pipelines as bare `EVALSHA` (`Lua.queue`). redis-py's `Script` makes a
pipeline that runs one ask `SCRIPT EXISTS` first, a round trip of its own every time (a
batch's three pipelined scripts cost three extra round trips). Here a store loads the
project's scripts before its first round trip (`SCRIPT LOAD`, on every primary of a
cluster); should a node answer NOSCRIPT later (restarted, flushed, or a replica promoted
by a failover: the script cache is not replicated), the round trip fails as transient,
and the retried batch loads them all again first, on every primary of the cluster as it
is then, and is applied whole, as after any partial failure (the writes are fenced: a
retry applies nothing twice).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import NoScriptError

from stream.adapters.redis.keys import DEFAULT_PREFIX, Keys, script, scripts
from stream.errors import TransientError

T = TypeVar("T")
log = logging.getLogger("touchstream.redis")
CLUSTER_RETRIES = 2  # silent retries inside the cluster client (a pipeline waits 0.25 s before each)


@dataclass(frozen=True, slots=True)
class Ttls:
    journey_ms: int
    conversion_ms: int
    outbox_ms: int
    paths_ms: int = 400 * 24 * 3600 * 1000
    identity_ms: int = 365 * 24 * 3600 * 1000


Client = Redis | RedisCluster


def connect(url: str, *, cluster: bool = False) -> Client:
    """The worker's client: no per-reply socket timeout (the stores time round trips);
    commands packed by hiredis. `cluster`: a `RedisCluster` found from the seed node(s)
    `url` names (`seed_urls`)."""
    if cluster:
        return _cluster(url)
    client = Redis.from_url(url, socket_timeout=None)
    pool = client.connection_pool
    pool.connection_class = _packed_by_hiredis(pool.connection_class)  # TCP, TLS or unix socket
    return client


def seed_urls(url: str) -> list[str]:
    """`redis://a:7000/0,redis://b:7001/0` -> each URL (a cluster's seed nodes)."""
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if not urls:
        raise ValueError(f"no Redis URL in {url!r}")
    return urls


REASONS = {
    "MovedError": "moved",
    "AskError": "ask",
    "TryAgainError": "tryagain",
    "ClusterDownError": "clusterdown",
    "SlotNotCoveredError": "slot_not_covered",
    "ConnectionError": "connection",
    "TimeoutError": "timeout",
}
SUMMARY_EVERY_S = 10.0


class ObservedCluster(RedisCluster):
    """redis-py's cluster client, telling what it follows or retries by itself for one
    command (MOVED, ASK, TRYAGAIN, a refused connection while a failover settles; a
    pipeline's redirected commands are re-sent one by one, so they count; a whole pipeline
    retried does not) to `on_internal(reason)`, and logging it: the first at once, then one
    summary line per `SUMMARY_EVERY_S` (written when the next one comes)."""

    on_internal: Callable[[str], None] | None = None
    _counts: Counter[str]
    _logged_at: float = 0.0

    async def _record_error_metric(
        self, error: Exception, connection: Any, *args: Any, **kwargs: Any
    ) -> None:
        if kwargs.get("is_internal", True):
            self._note(REASONS.get(type(error).__name__, "other"), error)
        await super()._record_error_metric(error, connection, *args, **kwargs)

    def _note(self, reason: str, error: Exception) -> None:
        if self.on_internal is not None:
            self.on_internal(reason)
        if not hasattr(self, "_counts"):
            self._counts = Counter()
        self._counts[reason] += 1
        now = time.monotonic()
        if now - self._logged_at >= SUMMARY_EVERY_S:
            seen = ", ".join(f"{n} {r}" for r, n in sorted(self._counts.items()))
            log.info("Redis Cluster: followed or retried within the client: %s (latest: %s)", seen, error)
            self._counts.clear()
            self._logged_at = now


def _cluster(url: str) -> RedisCluster:
    """The first seed's credentials, TLS and options apply to every node; the other seeds
    only add places to ask for the slot map (the client then knows every node).

    The client follows MOVED and ASK itself, and retries a refused connection or CLUSTERDOWN
    `CLUSTER_RETRIES` times (refreshing its slot map: a stale connection, a moved slot);
    trouble that lasts, such as a failover, then escapes to the runtime's retry policy,
    which logs each retry, counts it and backs off (redis-py's default, 10 silent retries,
    would hide a stalled worker for seconds)."""
    first, *others = seed_urls(url)
    nodes = [ClusterNode(p.hostname or "127.0.0.1", p.port or 6379) for p in map(urlparse, others)]
    retry = Retry(NoBackoff(), CLUSTER_RETRIES)
    client = ObservedCluster.from_url(first, socket_timeout=None, startup_nodes=nodes or None, retry=retry)
    # nodes found later are built from these kwargs; the seeds were built already
    kwargs = client.connection_kwargs
    kwargs["connection_class"] = _packed_by_hiredis(kwargs["connection_class"])
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = kwargs["connection_class"]
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
        """Queue `EVALSHA` as a raw command: redis-py's cluster pipeline refuses its `evalsha`
        method (written against scripts that `Script` loads on the pipeline), yet routes a
        raw EVALSHA by its keys' slot like any command."""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


class RoundTrips:
    """Base of the stores: a client, the deadline of one round trip, the Lua scripts, and
    the key names under the deployment's `prefix`."""

    def __init__(
        self, redis: Client, ttls: Ttls, timeout_s: float = 5.0, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.redis = redis
        self.ttls = ttls
        self.keys = Keys(prefix)
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
            lost = "a Redis node lost its Lua scripts (restarted, flushed, failed over): loading them again"
            raise TransientError(lost) from exc
        finally:
            await pipe.reset()

    async def call(self, command: Awaitable[T]) -> T:
        async with asyncio.timeout(self.timeout_s):
            return await command

    def pipeline(self) -> Any:
        return self.redis.pipeline(transaction=False)
