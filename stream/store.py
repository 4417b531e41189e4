"""Redis journey store: batched loads, fenced atomic writes (DESIGN.md §5).

Key layout (every key of a person shares the hash tag `{p:<id>}`, so one Lua
script can write all of them atomically in Redis Cluster):

    ts:{p:ID}:journey        string  compact journey (stream.journey.dumps)
    ts:{p:ID}:fence          hash    v (write version), <topic>:<partition> -> offset, ids (recent event ids)
    ts:{p:ID}:out            string  outputs of the person's last write, by offset (re-emitted on replay)
    ts:{p:ID}:conv:<cid>     string  the attribution value of conversion <cid>
    ts:{agg:P}:open          zset    persons of partition P with an open session, by last interaction ts

A batch costs two round trips: one pipeline loading every person, one
pipeline of per-person `apply.lua` calls. The script refuses a write whose
expected version is stale (another writer got there first: a sweeper, or a
worker that owned the partition before a rebalance); the caller reloads
and recomputes that person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from stream import journey as journeys
from stream.output import Message
from stream.person import Fence, PersonState, StepResult

APPLY_LUA = resources.files("stream").joinpath("lua/apply.lua").read_text()


def key(person_id: str, name: str) -> str:
    return f"ts:{{p:{person_id}}}:{name}"


def open_sessions_key(partition: int) -> str:
    return f"ts:{{agg:{partition}}}:open"


@dataclass(frozen=True, slots=True)
class Ttls:
    journey_ms: int
    conversion_ms: int
    outbox_ms: int


def _fence(raw: Mapping[bytes, bytes]) -> Fence:
    if not raw:
        return Fence()
    offsets = {k.decode(): int(v) for k, v in raw.items() if k not in (b"v", b"ids")}
    return Fence(int(raw.get(b"v", 0)), offsets, tuple(orjson.loads(raw.get(b"ids", b"[]"))))


def _messages(entries: Iterable[Sequence[str]]) -> list[Message]:
    return [Message(topic, k.encode(), v.encode()) for topic, k, v in entries]


class JourneyStore:
    """Loads and stores person states; one instance per worker."""

    def __init__(self, redis: Redis, ttls: Ttls) -> None:
        self.redis = redis
        self.ttls = ttls
        self._apply = redis.register_script(APPLY_LUA)

    async def load(self, person_ids: Sequence[str]) -> dict[str, PersonState]:
        """Every person's journey and fence in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for pid in person_ids:
            pipe.get(key(pid, "journey"))
            pipe.hgetall(key(pid, "fence"))
        replies = await pipe.execute()
        return {
            pid: PersonState(journeys.loads(replies[2 * i]), _fence(replies[2 * i + 1]))
            for i, pid in enumerate(person_ids)
        }

    async def save(self, results: Mapping[str, StepResult], partitions: Mapping[str, int]) -> set[str]:
        """Write every changed person in one pipeline; returns the persons refused (stale version)."""
        pipe = self.redis.pipeline(transaction=False)
        written = [pid for pid, r in results.items() if r.changed]
        for pid in written:
            await self._queue_apply(pipe, pid, results[pid])
        open_by_partition: dict[int, dict[str, int]] = {}
        for pid in written:
            j = results[pid].state.journey
            if j.session_open:
                open_by_partition.setdefault(partitions[pid], {})[pid] = j.session_last_ts
        for partition, members in open_by_partition.items():
            pipe.zadd(open_sessions_key(partition), members)
        if not written:
            return set()
        replies = await pipe.execute()
        return {pid for pid, ok in zip(written, replies, strict=False) if not ok}

    async def _queue_apply(self, pipe: Any, pid: str, result: StepResult) -> None:
        state = result.state
        offsets = [x for tp, off in state.fence.offsets.items() for x in (tp, off)]
        outbox = (
            orjson.dumps(
                {
                    str(o): [(m.topic, m.key.decode(), m.value.decode()) for m in msgs]
                    for o, msgs in result.outbox.items()
                }
            )
            if result.outbox
            else b""
        )
        keys = [key(pid, "journey"), key(pid, "fence"), key(pid, "out")]
        keys += [key(pid, f"conv:{c.conversion_id}") for c in result.conversions]
        args: list[bytes | str | int] = [
            state.fence.version,
            journeys.dumps(state.journey),
            self.ttls.journey_ms,
            orjson.dumps(list(state.fence.recent_ids)),
            outbox,
            self.ttls.outbox_ms,
            self.ttls.conversion_ms,
            len(offsets) // 2,
            *offsets,
            *(c.value for c in result.conversions),
        ]
        await self._apply(keys=keys, args=args, client=pipe)  # queues EVALSHA on the pipeline

    async def replayed_outputs(self, wanted: Mapping[str, Sequence[int]]) -> list[Message]:
        """Outputs stored for offsets that are being replayed, in one round trip."""
        pids = list(wanted)
        if not pids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for pid in pids:
            pipe.get(key(pid, "out"))
        messages: list[Message] = []
        for pid, raw in zip(pids, await pipe.execute(), strict=True):
            outbox = orjson.loads(raw) if raw else {}
            for offset in wanted[pid]:
                messages += _messages(outbox.get(str(offset), ()))
        return messages

    async def idle_candidates(self, partition: int, before_ts: int, limit: int = 1000) -> list[str]:
        raw = await self.redis.zrangebyscore(
            open_sessions_key(partition), "-inf", before_ts, start=0, num=limit
        )
        return [r.decode() for r in raw]

    async def forget_open(self, partition: int, person_ids: Sequence[str]) -> None:
        if person_ids:
            await self.redis.zrem(open_sessions_key(partition), *person_ids)

    async def save_states(self, states: Mapping[str, PersonState]) -> set[str]:
        """Write journeys without new offsets (the idle sweeper); returns refused persons."""
        pipe = self.redis.pipeline(transaction=False)
        for pid, state in states.items():
            result = StepResult(state, {}, [], [], 0, True)
            await self._queue_apply(pipe, pid, result)
        replies = await pipe.execute() if states else []
        return {pid for pid, ok in zip(states, replies, strict=True) if not ok}
