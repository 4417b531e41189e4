"""Retrying transient failures with backoff: one policy object, one place that loops.

A batch handler is idempotent (fenced state, outputs re-emitted from the outbox,
offset-fenced path counts), so when Redis or the broker fails mid-batch the whole
batch is simply retried: the handler takes nothing more (its queue fills and the fetch
loop stops fetching) instead of dropping anything, and resumes when the backend is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream.metrics import Metrics

T = TypeVar("T")
log = logging.getLogger("touchstream.retry")


class TouchstreamError(Exception):
    """Root of Touchstream's own errors; `retriable` says whether trying again can help."""

    retriable = False


class TransientError(TouchstreamError):
    """A failure that goes away by itself (contention, a backend restarting)."""

    retriable = True


def is_transient(exc: BaseException) -> bool:
    """Redis unreachable or loading, broker unreachable or leaderless, our own transient errors."""
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in (
            "KafkaTimeoutError",
            "KafkaConnectionError",
            "RequestTimedOutError",
        )
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | ConnectionError | TimeoutError) or (
        isinstance(exc, TouchstreamError) and exc.retriable
    )


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: initial, x multiplier each time, capped at maximum (seconds)."""

    initial: float = 0.1
    maximum: float = 5.0
    multiplier: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(self.maximum, delay * self.multiplier)


async def retrying(
    operation: Callable[[], Awaitable[T]], what: str, backoff: Backoff, metrics: Metrics | None = None
) -> T:
    """Run `operation` until it succeeds, waiting between transient failures; anything
    else propagates (a bug: the worker should crash and restart from committed offsets)."""
    delays = backoff.delays()
    failures = 0
    while True:
        try:
            result = await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            failures += 1
            delay = next(delays)
            log.warning(
                "%s failed (%s: %s); retry %d in %.1fs", what, type(exc).__name__, exc, failures, delay
            )
            if metrics is not None:
                metrics.retries.labels(what).inc()
                metrics.stalled.labels(what).set(1)
            await asyncio.sleep(delay)
            continue
        if failures:
            log.warning("%s recovered after %d retries", what, failures)
            if metrics is not None:
                metrics.stalled.labels(what).set(0)
        return result
