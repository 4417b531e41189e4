"""The lag probe against a real broker: a start cut short (the worker stopping while the
probe connects) leaves no client open to warn "Unclosed" at shutdown."""

import asyncio
import gc
import warnings

import pytest

from stream.adapters.kafka.clients import LagProbe


async def _never(started: asyncio.Event) -> None:
    started.set()
    await asyncio.Event().wait()


def test_a_start_cancelled_midway_closes_both_clients(services) -> None:
    bootstrap, _ = services

    async def run() -> LagProbe:
        probe = LagProbe(bootstrap)
        started = asyncio.Event()
        probe.consumer.start = lambda: _never(started)  # hold the start where a stop cuts it
        task = asyncio.create_task(probe.start())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return probe

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = asyncio.run(run())
        closed = (probe.consumer._closed, probe.admin._closed)
        del probe
        gc.collect()
    assert closed == (True, True)
    assert not [w for w in caught if "Unclosed" in str(w.message)]
