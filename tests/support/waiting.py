"""Waiting for something to happen: one polling helper, and "the worker is done".

A test never sleeps a fixed time before asserting: it polls for what it waits for, and a
test that asserts that nothing (more) happened first waits until the worker has
committed everything there was to read (`wait_drained`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from stream.settings import Settings
from tests.support.kafka import Target, lag, worker_inputs

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 60, what: str = "condition", interval: float = 0.2
) -> T:
    """Call `predicate` until it returns something true and return that; `TimeoutError`
    naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def wait_committed(target: Target, group: str, topics: list[str], timeout: float = 120) -> None:
    """Until consumer group `group` has committed every record of `topics` (up to the end
    offsets of the moment it is checked)."""
    wait_until(
        lambda: lag(target, group, topics) == 0, timeout, f"{group} committed {', '.join(topics)}", 0.5
    )


def wait_drained(settings: Settings, timeout: float = 120) -> None:
    """Until the worker(s) of `settings` have processed and committed everything published
    to the raw topic so far, and everything that forwarded to the person-keyed topic.

    A handler acks a batch once its outputs are acknowledged by the broker, and only acked
    offsets are committed: once drained, every output of that input is in its topic."""
    wait_committed(settings, settings.app_id, worker_inputs(settings), timeout)
