"""Consumer lag, measured on a timer apart from fetching: `touchstream_consumer_lag_records`.

Faust's own end-offset figures move only when records are fetched, so they freeze exactly
when a worker stops consuming. This service asks the broker every `interval` seconds, with
clients of its own on the worker's event loop (`LagProbe`), for the group's committed
offsets and the end offsets of the partitions this worker holds. Each worker reports its own
partitions, so the sum over workers is the group's lag. While the broker is away the gauge
keeps its last values, `last` (what `/api/live` shows) is None, and one line is logged per
failed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition
from mode import Service
from prometheus_client import Gauge

from stream.adapters.kafka.clients import LagProbe

log = logging.getLogger("touchstream.lag")
LAG_INTERVAL_S = 5.0


class LagMeter(Service):
    """Sets `gauge{topic,partition}` to the records past the committed offset of every
    partition `assigned()` returns, every `interval` seconds."""

    def __init__(
        self,
        probe: Callable[[], LagProbe],
        group: str,
        assigned: Callable[[], Iterable[Any]],
        gauge: Gauge,
        interval: float = LAG_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._new_probe = probe
        self._probe: LagProbe | None = None
        self.group = group
        self.assigned = assigned
        self.gauge = gauge
        self.interval = interval
        self.shown: set[tuple[str, int]] = set()  # the gauge's labels
        self.last: dict[tuple[str, int], int] | None = None  # the latest measurement, if it worked
        self.error: str | None = None  # why the latest attempt failed (`/ready` says it)

    async def on_shutdown(self) -> None:
        """After the task is stopped (`on_stop` runs before): nothing can open a probe again."""
        await self._close()

    async def _close(self) -> None:
        if self._probe is not None:
            probe, self._probe = self._probe, None
            await probe.stop()

    @Service.task
    async def _measure_forever(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            if not self.should_stop:
                await self.measure()

    async def measure(self) -> None:
        """One measurement; a failure (the broker away) is logged and the clients remade."""
        try:
            tps = sorted(TopicPartition(tp.topic, tp.partition) for tp in self.assigned())
            if self._probe is None:
                probe = self._new_probe()
                await probe.start()
                self._probe = probe
            lags = await self._probe.lag(self.group, tps)
        except Exception as exc:  # unreachable, timed out, coordinator moving: next time
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("consumer lag not measured: %s", self.error)
            self.last = None
            await self._close()
            return
        self.error = None
        self.show({(tp.topic, tp.partition): lag for tp, lag in lags.items()})

    def show(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Set the gauge to `lags`, dropping the partitions this worker no longer holds."""
        for gone in self.shown - lags.keys():
            self.gauge.remove(gone[0], str(gone[1]))
        for (topic, partition), lag in lags.items():
            self.gauge.labels(topic, str(partition)).set(lag)
        self.shown = set(lags)
        self.last = dict(lags)
