"""The model refresher: the data-driven snapshot this worker attributes with.

Every worker computes the snapshot from the same path counts in Redis, so all get the
same id; the one whose store changes the current snapshot publishes it to
`attribution.models`. Redis stores the snapshot in the published form (the list of
`attribution.models` values, `Snapshot.published`): one format.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson

from stream.adapters.kafka.emitter import Emitter
from stream.adapters.redis.aggregates import PartitionStore
from stream.attribution import snapshot as snapshots
from stream.attribution.paths import seen
from stream.attribution.snapshot import Snapshot
from stream.core.output import dumps, model_messages

log = logging.getLogger("touchstream.models")


@dataclass
class ModelKeeper:
    """Holds the current snapshot; `refresh` recomputes it from the path counts."""

    store: PartitionStore
    emitter: Emitter
    partitions: int
    markov_order: int = 1
    current: Snapshot | None = None

    async def load(self) -> None:
        """At start: the snapshot stored by any worker, until the first refresh. One that
        cannot be read (stored by an older release in another form) is ignored, with one
        log line: the next refresh replaces it."""
        raw = await self.store.current_snapshot()
        if not raw or self.current is not None:
            return
        try:
            self.current = snapshots.from_published(orjson.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:  # orjson.JSONDecodeError is a ValueError
            log.warning("ignoring the stored model snapshot until the next refresh: %s", exc)

    async def refresh(self) -> Snapshot | None:
        stats = await self.store.path_stats(self.partitions)
        if not seen(stats):
            return self.current
        snapshot = await asyncio.to_thread(snapshots.build, stats, self.markov_order)
        if await self.store.store_snapshot(snapshot.snapshot_id, dumps(snapshot.published())):
            await self.emitter.emit(model_messages(snapshot))
        self.current = snapshot
        return snapshot
