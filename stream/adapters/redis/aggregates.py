"""Per-partition aggregates in Redis: path counts, watermarks, the sweeper's indexes, snapshots.

Everything a partition accumulates lives under its hash tag `{agg:<partition>}` and is
summed by readers. Path counts and the report counters (one hash per UTC day,
`stream.core.counters`) are applied with the partition's offset fence (`paths.lua`), so a
replay, a crash or a rebalance never counts twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.adapters.redis.connection import Client, RoundTrips, Ttls
from stream.adapters.redis.keys import DEFAULT_PREFIX, Keys, script
from stream.attribution.paths import VALUE_SCALE, PathCount, parse_path
from stream.core.config import ReportLimits
from stream.core.counters import Count
from stream.core.person import StepResult
from stream.errors import TransientError


@dataclass(frozen=True, slots=True)
class PathIncrement:
    """One path-count increment, from the event at `offset`."""

    offset: int
    path: str
    conversions: int
    value_micros: int
    nulls: int


@dataclass(frozen=True, slots=True)
class PartitionBatch:
    """What one batch's events of one source partition add to the partition's path counts:
    `fence` names the offset fence of that source (`paths-fence` for the person-keyed
    topic, `paths-fence:raw` for raw events applied where they were read)."""

    partition: int
    fence: str
    last_offset: int
    increments: list[PathIncrement]
    counts: list[tuple[int, Count]] = field(default_factory=list)  # (offset, report counter), offset order


class PartitionStore(RoundTrips):
    """Reads and writes the per-partition aggregates; one instance per worker."""

    def __init__(
        self,
        redis: Client,
        ttls: Ttls,
        max_paths: int = 10_000,
        timeout_s: float = 5.0,
        reports: ReportLimits | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(redis, ttls, timeout_s, prefix)
        self.max_paths = max_paths
        self.reports = reports or ReportLimits()
        self._paths = self.lua("paths")
        self._watermark = self.lua("watermark")
        self._snapshot = redis.register_script(script("snapshot"))
        self._known_fences: dict[tuple[int, str], int] = {}  # (partition, fence) -> offset

    async def add_aggregates(
        self, batches: Sequence[PartitionBatch], persons: Mapping[str, tuple[int, StepResult]]
    ) -> None:
        """One round trip after the person writes: per source partition the path increments
        and report counters of the offsets past its fence, summed; per accepted person
        (`persons`: person -> (partition, result)) the sweeper's indexes and the conversion
        index. Index writes are idempotent, so persons whose events were all replays refresh
        theirs too.

        The fences: this worker remembers each source partition's fence as it last wrote
        or read it, leaves out the increments at or below it and sums the rest; `paths.lua`
        applies the sums only if the fence is still that value (compare-and-set) and moves
        it to the batch's last offset. Were it moved meanwhile (another worker wrote the
        partition during a rebalance), the batch fails as transient and is retried with the
        fence read again: a replay never counts twice, and a batch costs one script call
        per source partition whatever its size."""
        if not batches and not persons:
            return
        fences = await self._fences(batches)
        pipe = self.pipeline()
        _queue_indexes(pipe, self.keys, persons)
        for pid, (_partition, result) in persons.items():
            for stored in result.conversions:  # where revenue for a conversion goes
                pipe.set(self.keys.conversion_index(stored.conversion_id), pid, px=self.ttls.conversion_ms)
        now_ms = int(time.time() * 1000)
        queued = []
        for batch in batches:
            fence = fences[batch.partition, batch.fence]
            if batch.last_offset <= fence:
                continue  # all of it applied before
            self._queue_paths(pipe, batch, fence, now_ms)
            queued.append(batch)
        replies = await self.run(pipe)
        self._advance_fences(queued, replies[len(replies) - len(queued) :])

    def forget_fences(self) -> None:
        """A rebalance: read the fences again before the next write."""
        self._known_fences.clear()

    async def _fences(self, batches: Sequence[PartitionBatch]) -> dict[tuple[int, str], int]:
        """Each source partition's fence: remembered, or read (after a start or a rebalance;
        one GET each, in one pipeline: the partitions' keys are on several cluster slots)."""
        unknown = sorted({(b.partition, b.fence) for b in batches} - set(self._known_fences))
        if unknown:
            pipe = self.pipeline()
            for partition, name in unknown:
                pipe.get(self.keys.partition(partition, name))
            read = await self.run(pipe)
            self._known_fences |= {
                k: int(v) if v is not None else -1 for k, v in zip(unknown, read, strict=True)
            }
        return self._known_fences

    def _advance_fences(self, batches: Sequence[PartitionBatch], replies: Sequence[Any]) -> None:
        moved = [b for b, ok in zip(batches, replies, strict=True) if not ok]
        for batch in batches:
            self._known_fences[batch.partition, batch.fence] = batch.last_offset
        for batch in moved:
            del self._known_fences[batch.partition, batch.fence]
        if moved:
            names = ", ".join(f"{b.fence} of partition {b.partition}" for b in moved)
            raise TransientError(
                f"{names} moved meanwhile (another worker wrote it, or a failed round trip applied "
                "it): retrying the batch"
            )

    def _queue_paths(self, pipe: Any, batch: PartitionBatch, fence: int, now_ms: int) -> None:
        """Queue `paths.lua` on `pipe` with the batch's increments past `fence`; its keys are
        the partition's path counts, the source's fence and the day hashes of the counters."""
        names = ["paths", batch.fence]
        args: list[int | str] = [fence, batch.last_offset, self.max_paths, self.ttls.paths_ms]
        args += [self.reports.max_counters, *self._script_args(batch, fence, names, now_ms)]
        self._paths.queue(pipe, self.keys.partition_keys(batch.partition, names), args)

    def _script_args(
        self, batch: PartitionBatch, fence: int, names: list[str], now_ms: int
    ) -> list[int | str]:
        """`paths.lua`'s increments past `fence`, summed: path counts, then report counters
        (`names` gets the day hashes they name; days past the retention are left out)."""
        paths: dict[str, list[int]] = {}
        for inc in batch.increments:
            if inc.offset > fence:
                total = paths.setdefault(inc.path, [0, 0, 0])
                total[0] += inc.conversions
                total[1] += inc.value_micros
                total[2] += inc.nulls
        args: list[int | str] = [len(paths)]
        for path, amounts in paths.items():
            args += [path, *amounts]
        counters: dict[tuple[str, str], list[Any]] = {}
        for offset, count in batch.counts:
            if offset > fence:
                summed = counters.setdefault((count.day, count.field), [count.fold, 0])
                summed[1] += count.amount
        index: dict[str, int] = {}
        for (day, name), (fold, amount) in counters.items():
            expires = self.reports.expires_at(day)
            if not amount or expires <= now_ms:
                continue
            if day not in index:
                names.append(f"report:{day}")
                index[day] = len(names)  # KEYS[i] in Lua: 1-based
            args += [index[day], expires, name, fold, amount]
        return args

    async def report_counters(self, partitions: int, days: Sequence[str]) -> dict[str, int]:
        """Every report counter of `days` (YYYY-MM-DD), summed over days and partitions."""
        pipe = self.pipeline()
        for partition in range(partitions):
            for day in days:
                pipe.hgetall(self.keys.partition(partition, f"report:{day}"))
        totals: dict[str, int] = {}
        for raw in await self.run(pipe):
            for name, amount in raw.items():
                key = name.decode()
                totals[key] = totals.get(key, 0) + int(amount)
        return totals

    async def advance_watermarks(self, max_ts: Mapping[int, int], now_ms: int) -> None:
        """Raw partition -> the highest event ts a batch ingested from it (watermark.lua)."""
        if not max_ts:
            return
        pipe = self.pipeline()
        for partition, ts in max_ts.items():
            keys = [self.keys.partition(partition, "raw-watermark")]
            self._watermark.queue(pipe, keys, [ts, now_ms, self.ttls.paths_ms])
        await self.run(pipe)

    async def watermarks(self, partitions: int) -> dict[int, tuple[int, int]]:
        """Raw partition -> (its watermark, the wall clock of its latest events), where there is one."""
        pipe = self.pipeline()
        for partition in range(partitions):
            pipe.hmget(self.keys.partition(partition, "raw-watermark"), "ts", "at")
        replies = await self.run(pipe)
        return {p: (int(ts), int(at)) for p, (ts, at) in enumerate(replies) if None not in (ts, at)}

    async def path_stats(self, partitions: int) -> dict[tuple[str, ...], PathCount]:
        """Every partition's path counts, summed (integer sums: exact and order-free)."""
        pipe = self.pipeline()
        for partition in range(partitions):
            pipe.hgetall(self.keys.partition(partition, "paths"))
        totals: dict[str, list[int]] = {}
        for raw in await self.run(pipe):
            for name, count in raw.items():
                kind, _, path = name.decode().partition("|")
                if path:
                    totals.setdefault(path, [0, 0, 0])["cvn".index(kind)] += int(count)
        return {
            parse_path(path): PathCount(c, v / VALUE_SCALE, n) for path, (c, v, n) in sorted(totals.items())
        }

    async def store_snapshot(self, snapshot_id: str, doc: bytes) -> bool:
        """Make this the current snapshot; True when it changed (publish it)."""
        keys = self.keys.snapshot_keys()
        return bool(await self.call(self._snapshot(keys=keys, args=[snapshot_id, doc])))

    async def current_snapshot(self) -> bytes | None:
        return await self.call(self.redis.get(self.keys.snapshot_keys()[1]))

    async def due(
        self, partition: int, kind: str, before_ts: int, limit: int = 1000
    ) -> list[tuple[str, int]]:
        """(person, score) of `partition` in index `kind` ("open" or "active") scored before `before_ts`."""
        raw = await self.call(
            self.redis.zrangebyscore(
                self.keys.partition(partition, kind), "-inf", before_ts, start=0, num=limit, withscores=True
            )
        )
        return [(member.decode(), int(score)) for member, score in raw]


def _queue_indexes(pipe: Any, keys: Keys, persons: Mapping[str, tuple[int, StepResult]]) -> None:
    """Keep the sweeper's indexes (open sessions and live journeys of each partition):
    at most one ZADD and one ZREM per index and partition. A tombstone (an anonymous person
    merged into a customer) leaves both: nothing of it is left to close or expire."""
    adds: dict[str, dict[str, int]] = {}
    removes: dict[str, list[str]] = {}
    for pid, (partition, result) in persons.items():
        journey = result.state.journey
        live = journey.merged_into is None
        for name, score in (
            ("open", live and journey.session_open and journey.session_last_ts),
            ("active", live and journey.last_ts),
        ):
            index = keys.partition(partition, name)
            if score:
                adds.setdefault(index, {})[pid] = score
            else:
                removes.setdefault(index, []).append(pid)
    for index, members in adds.items():
        pipe.zadd(index, members)
    for index, pids in removes.items():
        pipe.zrem(index, *pids)
