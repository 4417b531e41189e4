"""The sweeper: asks idle sessions to close and old journeys to expire.

It changes no state itself: on the partitions this worker owns it publishes a
`close_idle` (stamped with the wall clock) or `expire` (stamped with the low watermark:
the event time every raw partition has reached, `stream.core.control`) control event per
due person on the person-keyed topic, which the worker applies like any event
— fenced, exactly once, replayable. Expiry follows event time, so a replay of old data
expires journeys exactly as `touchstream attribute --events` does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from stream.adapters.kafka.emitter import Emitter
from stream.adapters.redis.aggregates import PartitionStore
from stream.core.codec import encode_event
from stream.core.config import MINUTE_MS, Rules
from stream.core.control import ControlKind, control_event, expires_before, low_watermark
from stream.core.output import Message
from stream.core.topics import PERSONS

REQUEST_AGAIN_MS = MINUTE_MS  # a request not yet applied is not repeated sooner (the handler may lag)


@dataclass
class Sweeper:
    store: PartitionStore
    emitter: Emitter
    rules: Rules
    partitions: int  # of the raw topic: the low watermark is theirs
    idle_ms: int  # a raw partition without events this long holds nobody's expiry back
    requested: dict[tuple[str, str], int] = field(default_factory=dict)

    async def sweep(self, partitions: Sequence[int], now_ms: int | None = None) -> int:
        """Publish the due requests of `partitions`; returns how many."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self.requested = {k: t for k, t in self.requested.items() if now_ms - t <= REQUEST_AGAIN_MS}
        requests = []
        for kind, pid, last, ts in await self._due(partitions, now_ms):
            if (kind, pid) in self.requested:
                continue
            self.requested[kind, pid] = now_ms
            event = control_event(kind, pid, last, ts)
            requests.append(Message(PERSONS, pid.encode(), encode_event(event)))
        await self.emitter.emit(requests)
        return len(requests)

    async def _due(self, partitions: Sequence[int], now_ms: int) -> list[tuple[ControlKind, str, int, int]]:
        """(kind, person, its index score, the request's ts) of every due person."""
        due: list[tuple[ControlKind, str, int, int]] = []
        watermark = low_watermark(await self.store.watermarks(self.partitions), now_ms, self.idle_ms)
        for partition in partitions:
            for pid, last in await self.store.due(partition, "open", now_ms - self.rules.session_timeout_ms):
                due.append(("close_idle", pid, last, now_ms))
            if watermark is not None:
                before = expires_before(watermark, self.rules) - 1
                for pid, last in await self.store.due(partition, "active", before):
                    due.append(("expire", pid, last, watermark))
        return due
