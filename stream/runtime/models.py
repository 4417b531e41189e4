"""The model refresher: the data-driven snapshot this worker attributes with.

Every worker computes the snapshot from the same path counts in Redis, so all get the
same id; the one whose store changes the current snapshot publishes it to
`attribution.models`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

from stream.adapters.kafka.emitter import Emitter
from stream.adapters.redis.aggregates import PartitionStore
from stream.attribution import snapshot as snapshots
from stream.attribution.paths import seen
from stream.attribution.snapshot import Snapshot
from stream.core.output import dumps, model_messages


@dataclass
class ModelKeeper:
    """Holds the current snapshot; `refresh` recomputes it from the path counts."""

    store: PartitionStore
    emitter: Emitter
    partitions: int
    markov_order: int = 1
    current: Snapshot | None = None

    async def load(self) -> None:
        """At start: the snapshot stored by any worker, until the first refresh."""
        raw = await self.store.current_snapshot()
        if raw and self.current is None:
            self.current = Snapshot.from_doc(orjson.loads(raw))

    async def refresh(self) -> Snapshot | None:
        stats = await self.store.path_stats(self.partitions)
        if not seen(stats):
            return self.current
        snapshot = await asyncio.to_thread(snapshots.build, stats, self.markov_order)
        doc = snapshot.doc()
        if await self.store.store_snapshot(snapshot.snapshot_id, dumps(doc)):
            await self.emitter.emit(model_messages(doc))
        self.current = snapshot
        return snapshot
