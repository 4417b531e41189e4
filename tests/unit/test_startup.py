"""Waiting for the services at start (`stream.cli.startup`): the backoff, the lines said."""

from __future__ import annotations

import random

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from stream.cli.startup import Backoff, Unreachable, _reason, wait_for


def test_delays_double_up_to_the_cap_less_at_most_the_jitter() -> None:
    delays = Backoff(first_s=1, cap_s=30, jitter=0.2).delays(random.Random(7))
    drawn = [next(delays) for _ in range(8)]
    for delay, ceiling in zip(drawn, (1, 2, 4, 8, 16, 30, 30, 30), strict=True):
        assert 0.8 * ceiling <= delay <= ceiling
    assert len(set(drawn[5:])) == 3  # jittered: a fleet restarted at once spreads out


def test_without_jitter_the_delays_are_exact() -> None:
    delays = Backoff(first_s=0.5, cap_s=3, jitter=0).delays(random.Random(0))
    assert [next(delays) for _ in range(5)] == [0.5, 1, 2, 3, 3]


def test_wait_for_says_each_failed_attempt_and_when_it_tries_again(capsys) -> None:
    answers = iter([Unreachable("connection refused"), Unreachable("timed out"), None])
    slept: list[float] = []

    def reach() -> None:
        if (answer := next(answers)) is not None:
            raise answer

    attempts = wait_for("Redis at redis://h:1/0", reach, Backoff(jitter=0), slept.append)
    assert (attempts, slept) == (3, [1, 2])
    assert capsys.readouterr().err.splitlines() == [
        "touchstream: waiting for Redis at redis://h:1/0: connection refused (attempt 1, next in 1.0 s)",
        "touchstream: waiting for Redis at redis://h:1/0: timed out (attempt 2, next in 2.0 s)",
    ]


def test_anything_but_unreachable_is_not_waited_for() -> None:
    def refuse() -> None:
        raise PermissionError("WRONGPASS")

    with pytest.raises(PermissionError):
        wait_for("Redis", refuse, Backoff(jitter=0), lambda _s: None)


LOADING = "Redis is loading the dataset in memory"
REFUSED = "connection refused"


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (
            RedisConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused."),
            "connection refused",
        ),
        (RedisConnectionError("Timeout connecting to server"), "timed out"),
        (
            RedisConnectionError("Redis is loading the dataset in memory"),
            "Redis is loading the dataset in memory",
        ),
    ],
)
def test_reasons_as_a_person_says_them(exc: BaseException, said: str) -> None:
    assert _reason(exc) == said
