"""The retry policy (stream.runtime.retry): what is transient, the jittered backoff, the observer."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream.errors import SettingsError, TransientError
from stream.runtime import retry
from stream.runtime.retry import RetryPolicy, is_transient


@pytest.mark.parametrize(
    "exc",
    [
        KafkaConnectionError(),
        KafkaTimeoutError(),
        RequestTimedOutError(),
        UnknownTopicOrPartitionError(),  # retriable: a topic being created, a leader moving
        RedisConnectionError("refused"),
        RedisTimeoutError("slow"),
        TimeoutError(),  # a round trip past its deadline
        ConnectionResetError(),
        TransientError("contention"),
    ],
)
def test_transient_failures(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc", [ResponseError("WRONGTYPE"), SettingsError("bad"), ValueError("bug"), KeyError("bug")]
)
def test_everything_else_is_a_bug(exc: BaseException) -> None:
    assert not is_transient(exc)


class Recorder:
    def __init__(self) -> None:
        self.retries: list[tuple[str, int, float, str]] = []
        self.recoveries: list[tuple[str, int]] = []

    def retrying(self, what: str, failures: int, delay: float, exc: BaseException) -> None:
        self.retries.append((what, failures, delay, type(exc).__name__))

    def recovered(self, what: str, failures: int) -> None:
        self.recoveries.append((what, failures))


def flaky(failures: list[BaseException]):
    calls = []

    async def operation() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return operation, calls


def test_transient_failures_are_retried_with_growing_jittered_delays(monkeypatch) -> None:
    slept: list[float] = []

    async def no_wait(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    operation, calls = flaky([RedisConnectionError("down")] * 7)
    observer = Recorder()
    assert asyncio.run(RetryPolicy(initial=0.1, maximum=1.0).run(operation, "journeys", observer)) == "done"
    assert len(calls) == 8
    assert [r[1] for r in observer.retries] == [1, 2, 3, 4, 5, 6, 7]
    assert observer.recoveries == [("journeys", 7)]
    delays = [r[2] for r in observer.retries]
    assert slept == delays
    for n, delay in enumerate(delays):
        ceiling = min(0.1 * 2**n, 1.0)  # d; the wait is d/2 plus a random part of d/2
        assert ceiling / 2 <= delay <= ceiling + 1e-9, (n, delay)


def test_jitter_spreads_workers_that_fail_together(monkeypatch) -> None:
    async def no_wait(delay: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    delays = set()
    for _ in range(20):
        operation, _calls = flaky([TimeoutError()] * 3)
        observer = Recorder()
        asyncio.run(RetryPolicy().run(operation, "ingest", observer))
        delays.add(observer.retries[-1][2])
    assert len(delays) > 10  # not in lockstep


def test_a_bug_propagates_at_once_as_itself() -> None:
    operation, calls = flaky([ValueError("bug")])
    observer = Recorder()
    with pytest.raises(ValueError, match="bug"):
        asyncio.run(RetryPolicy().run(operation, "journeys", observer))
    assert len(calls) == 1 and observer.retries == [] and observer.recoveries == []


def test_success_at_first_says_nothing() -> None:
    operation, calls = flaky([])
    observer = Recorder()
    assert asyncio.run(RetryPolicy().run(operation, "sweep", observer)) == "done"
    assert len(calls) == 1 and observer.retries == [] and observer.recoveries == []


def test_the_default_observer_logs_for_operators(caplog, monkeypatch) -> None:
    async def no_wait(delay: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    operation, _calls = flaky([RedisConnectionError("refused")])
    with caplog.at_level("WARNING", logger=retry.log.name):
        asyncio.run(RetryPolicy().run(operation, "journeys"))
    assert [r.getMessage()[:45] for r in caplog.records] == [
        "journeys failed (ConnectionError: refused); r",
        "journeys recovered after 1 retries",
    ]
