"""Retrying transient failures: one policy object, exponential backoff with jitter (tenacity).

A batch handler is idempotent (fenced state, outputs re-emitted from the outbox,
offset-fenced path counts), so when Redis or the broker fails mid-batch the whole batch
is simply retried: the handler takes nothing more (its queue fills and the fetch loop
stops fetching) instead of dropping anything, and resumes when the backend is back.

What is transient is decided by the libraries' own flags and types (`is_transient`);
anything else propagates — a bug, which crashes the worker so that it restarts from
the committed offsets. What a retry looks like to operators (logs, metrics) is a
`RetryObserver` handed in, not part of the policy.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError, KafkaTimeoutError
from redis.exceptions import AskError, ClusterError, RedisClusterException, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_random_exponential,
)

from stream.errors import TouchstreamError

T = TypeVar("T")
log = logging.getLogger("touchstream.retry")


# what redis-py's cluster client says, with no cause attached, while its nodes do not yet
# agree on a full slot map (a failover, a node joining); anything else of RedisClusterException
# (keys of several slots in one command) is a bug
CLUSTER_FORMING = ("slots are not covered", "could not agree on a valid slots cache")


def is_transient(exc: BaseException) -> bool:
    """Broker unreachable, leaderless or slow (aiokafka's `retriable` errors, and its client-side
    timeout); Redis unreachable or loading (redis-py's connection and timeout errors); a Redis
    Cluster failing over or resharding past the client's own retries (CLUSTERDOWN, TRYAGAIN,
    MOVED/ASK, a slot without a node, no node reachable); a round trip past its deadline;
    Touchstream's own retriable errors."""
    if isinstance(exc, KafkaError):
        return exc.retriable or isinstance(exc, KafkaTimeoutError)
    if isinstance(exc, TouchstreamError):
        return exc.retriable
    if isinstance(exc, RedisClusterException) and not isinstance(exc, SlotNotCoveredError):
        if any(words in str(exc) for words in CLUSTER_FORMING):
            return True  # redis-py's slot map while nodes fail over or join: no cause attached
        return exc.__cause__ is not None and is_transient(exc.__cause__)  # "cannot be connected"
    return isinstance(
        exc,
        RedisConnectionError
        | RedisTimeoutError
        | ClusterError
        | TryAgainError
        | AskError
        | SlotNotCoveredError
        | ConnectionError
        | TimeoutError,
    )


class RetryObserver(Protocol):
    def retrying(self, what: str, failures: int, delay: float, exc: BaseException) -> None: ...

    def recovered(self, what: str, failures: int) -> None: ...


class LogRetries:
    """Says what waits and when it recovered, in the log: `journeys failed (…); retry 3 in 0.4s`."""

    def retrying(self, what: str, failures: int, delay: float, exc: BaseException) -> None:
        log.warning("%s failed (%s: %s); retry %d in %.1fs", what, type(exc).__name__, exc, failures, delay)

    def recovered(self, what: str, failures: int) -> None:
        log.warning("%s recovered after %d retries", what, failures)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry transient failures forever, waiting d/2 + a random part of d/2 before retry n,
    where d = `initial` × 2^(n-1) capped at `maximum` (seconds): exponential, and jittered
    so that workers restarted together do not retry in lockstep."""

    initial: float = 0.1
    maximum: float = 5.0

    async def run(
        self, operation: Callable[[], Awaitable[T]], what: str, observer: RetryObserver | None = None
    ) -> T:
        """`operation()` until it succeeds; a failure that is not transient propagates as is."""
        observer = observer or LogRetries()
        half = wait_exponential(multiplier=self.initial / 2, max=self.maximum / 2)
        jitter = wait_random_exponential(multiplier=self.initial / 2, max=self.maximum / 2)

        def before_sleep(state: RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None
            exc = state.outcome.exception()
            assert exc is not None
            observer.retrying(what, state.attempt_number, state.next_action.sleep, exc)

        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=half + jitter,
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:  # stops after the first attempt that did not raise
            with attempt:
                result = await operation()
        failures = attempt.retry_state.attempt_number - 1
        if failures:
            observer.recovered(what, failures)
        return result
