"""Redis journey store: batched loads, fenced atomic writes (DESIGN.md §5).

Key layout (every key of a person shares the hash tag `{p:<id>}`, so one Lua
script can write all of them atomically in Redis Cluster):

    ts:{p:ID}:state          string  write version (12 digits), then zlib (preset VOCABULARY) of the
                                     compact journey (stream.journey.dumps), the last offset per
                                     <topic>:<partition> and the recent (id key, digest) pairs:
                                     one GET loads a person
    ts:{p:ID}:out            hash    offset -> that event's outputs, until Kafka acknowledged them
                                     (re-emitted by a replay that finds the state already written)
    ts:{p:ID}:conv:<cid>     string  conversion <cid>: its attribution value and revenue total
    ts:cid:<cid>             string  the person of conversion <cid> (routes revenue without a person id)
    ts:id:<anonymous_id>     string  the customer an anonymous id was identified as (first wins)
    ts:{agg:P}:open          zset    persons of partition P with an open session, by last interaction ts
    ts:{agg:P}:active        zset    persons of partition P with a journey, by last event ts (expiry)
    ts:{agg:P}:paths         hash    path counts the data-driven models learn from (paths.lua)
    ts:{agg:P}:paths-fence   string  last offset of partition P whose path counts are applied
    ts:{agg:P}:watermark     string  max event ts applied on partition P (the sweeper expires by it)
    ts:{models}:id / :current        the current data-driven model snapshot

A batch costs two round trips: one pipeline loading every person (one GET
each), one pipeline of per-person `apply.lua` calls. The script refuses a write whose
expected version is stale (another writer got there first: a sweeper, or a
worker that owned the partition before a rebalance); the caller reloads
and recomputes that person.
"""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from stream import journey as journeys
from stream.attribution.paths import PathCount, parse_path
from stream.attribution.snapshot import VALUE_SCALE
from stream.events import CHANNELS, DIRECTNESS, MEDIUM_KINDS, STAGES
from stream.output import CONVERSIONS, CREDITS, Message, conversion_messages
from stream.person import DIGEST_HEX, ID_KEY_HEX, Fence, PersonState, StepResult

APPLY_LUA, PATHS_LUA, SNAPSHOT_LUA = (
    resources.files("stream").joinpath(f"lua/{name}.lua").read_text()
    for name in ("apply", "paths", "snapshot")
)
SNAPSHOT_ID, SNAPSHOT = "ts:{models}:id", "ts:{models}:current"


def key(person_id: str, name: str) -> str:
    return f"ts:{{p:{person_id}}}:{name}"


def identity_key(anonymous_id: str) -> str:
    return f"ts:id:{anonymous_id}"


def conversion_index_key(conversion_id: str) -> str:
    return f"ts:cid:{conversion_id}"


def partition_key(partition: int, name: str) -> str:
    return f"ts:{{agg:{partition}}}:{name}"


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
    """What one batch adds to a partition's aggregates."""

    last_offset: int
    max_ts: int  # highest event ts (interactions/conversions) of the batch; 0 when none
    increments: list[PathIncrement]


@dataclass(frozen=True, slots=True)
class Ttls:
    journey_ms: int
    conversion_ms: int
    outbox_ms: int
    paths_ms: int = 400 * 24 * 3600 * 1000


VERSION_DIGITS = 12  # apply.lua reads the version off the value's first bytes (GETRANGE)
# zlib's preset dictionary for person states: values common in marketing data (DESIGN's
# enumerations, the usual UTM sources, media and interaction verbs), so the first mention of
# each in a state costs a back-reference instead of the word (bench/suite.py measures bytes
# per journey). Stored states decode only with this exact dictionary: change it with care.
VOCABULARY = (
    b",".join(
        orjson.dumps(word)
        for word in (
            *sorted(CHANNELS | MEDIUM_KINDS | DIRECTNESS | STAGES),
            *("google", "bing", "meta", "facebook", "instagram", "linkedin", "youtube", "tiktok"),
            *("newsletter", "cpc", "organic", "social", "referral", "none", "brand", "partner"),
            *("click", "impression", "visit", "open", "view", "call", "citation"),
        )
    )
    + b',null,true,false,0.0]],[[{"page":"/"},{"page":"/product"},{"page":"/pricing"}'
)
_ENTRY = ID_KEY_HEX + DIGEST_HEX  # one remembered event id: id_key then content digest


def encode_state(state: PersonState, version: int) -> bytes:
    """A person's journey and fence as one value, stamped with `version`: the compact
    journey, the offsets, and the recent (id key, digest) pairs as one run of hex digits."""
    fence = orjson.dumps(state.fence.offsets) + b"\n" + "".join(k + d for k, d in state.fence.recent).encode()
    packer = zlib.compressobj(6, zdict=VOCABULARY)
    payload = packer.compress(journeys.dumps(state.journey) + b"\n" + fence) + packer.flush()
    return b"%0*d" % (VERSION_DIGITS, version) + payload


def decode_state(raw: bytes | None) -> PersonState:
    if not raw:
        return PersonState()
    unpacker = zlib.decompressobj(zdict=VOCABULARY)
    data = unpacker.decompress(raw[VERSION_DIGITS:]) + unpacker.flush()
    journey, offsets, recent = data.split(b"\n")
    pairs = recent.decode()
    entries = tuple(
        (pairs[i : i + ID_KEY_HEX], pairs[i + ID_KEY_HEX : i + _ENTRY]) for i in range(0, len(pairs), _ENTRY)
    )
    version = int(raw[:VERSION_DIGITS])
    return PersonState(journeys.loads(journey), Fence(version, orjson.loads(offsets), entries))


def _outbox_entry(messages: Iterable[Message]) -> bytes:
    """One offset's outputs as stored in the outbox. Credit rows (~70 per conversion) are
    left out: `_outputs` derives them again from their conversion value, byte for byte."""
    return orjson.dumps(
        [
            (m.topic, None if m.key is None else m.key.decode(), m.value.decode())
            for m in messages
            if m.topic != CREDITS
        ]
    )


def _outputs(entry: bytes) -> list[Message]:
    messages: list[Message] = []
    for topic, k, v in orjson.loads(entry):
        if topic == CONVERSIONS:
            messages += conversion_messages(orjson.loads(v))  # the value and its credit rows
        else:
            messages.append(Message(topic, None if k is None else k.encode(), v.encode()))
    return messages


class JourneyStore:
    """Loads and stores person states; one instance per worker."""

    def __init__(
        self,
        redis: Redis,
        ttls: Ttls,
        max_paths: int = 10_000,
        outbox_entries: int = 64,
        cached_states: int = 10_000,
        timeout_s: float = 5.0,
    ) -> None:
        self.redis = redis
        # one deadline per round trip (a TimeoutError is transient: the batch is retried),
        # rather than redis-py's socket timeout, which arms a timer per reply
        self.timeout_s = timeout_s
        # person -> (stored value, its decoding): a load that finds the very bytes this worker
        # last wrote or read skips the decompression and parsing (bytes equal, state equal)
        self._decoded: dict[str, tuple[bytes, PersonState]] = {}
        self.cached_states = cached_states
        self.ttls = ttls
        self.max_paths = max_paths
        self.outbox_entries = outbox_entries  # recent writes whose outputs a replay can re-emit
        self._apply = redis.register_script(APPLY_LUA)
        self._paths = redis.register_script(PATHS_LUA)
        self._snapshot = redis.register_script(SNAPSHOT_LUA)

    async def load(
        self,
        person_ids: Sequence[str],
        conversions: Mapping[str, Sequence[str]] | None = None,
        others: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, PersonState]:
        """Every person's journey and fence, the stored conversions named in `conversions`
        (person -> conversion ids, for conversion and revenue events) and the anonymous
        persons named in `others` (person -> anonymous ids its identify events merge), in
        one round trip."""
        conversions, others = conversions or {}, others or {}
        pipe = self.redis.pipeline(transaction=False)
        for pid in person_ids:
            for who in (pid, *others.get(pid, ())):
                pipe.get(key(who, "state"))
            for cid in conversions.get(pid, ()):
                pipe.get(key(pid, f"conv:{cid}"))
        replies = iter(await self._run(pipe))
        states = {}
        for pid in person_ids:
            own = self._decode(pid, next(replies))
            anonymous = {anon: decode_state(next(replies)) for anon in others.get(pid, ())}
            stored = {cid: raw for cid in conversions.get(pid, ()) if (raw := next(replies)) is not None}
            states[pid] = PersonState(own.journey, own.fence, stored, anonymous)
        return states

    async def _run(self, pipe: Any) -> list[Any]:
        async with asyncio.timeout(self.timeout_s):
            return await pipe.execute()

    async def routing(
        self, claims: Sequence[tuple[str, str]], anonymous_ids: Sequence[str], conversion_ids: Sequence[str]
    ) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """The ingest's lookups, in one round trip (in this order, so an anonymous id claimed
        by an identify of the batch is known to the batch's later events):

        - each (anonymous id, customer) claim maps the anonymous id unless it is mapped
          already (first mapping wins); returned, per claim, the customer it is mapped to;
        - anonymous id -> customer, for the identified `anonymous_ids`;
        - conversion id -> its person, for the known `conversion_ids` (revenue routing).
        """
        if not (claims or anonymous_ids or conversion_ids):
            return [], {}, {}
        pipe = self.redis.pipeline(transaction=False)
        for anon, customer in claims:
            pipe.set(identity_key(anon), customer, nx=True, get=True, px=self.ttls.conversion_ms)
        for anon in anonymous_ids:
            pipe.get(identity_key(anon))
        for cid in conversion_ids:
            pipe.get(conversion_index_key(cid))
        replies = await self._run(pipe)
        found = replies[: len(claims)]
        mapped = replies[len(claims) : len(claims) + len(anonymous_ids)]
        owners = replies[len(claims) + len(anonymous_ids) :]
        return (
            [
                c if previous is None else previous.decode()
                for (_a, c), previous in zip(claims, found, strict=True)
            ],
            {a: c.decode() for a, c in zip(anonymous_ids, mapped, strict=True) if c is not None},
            {cid: p.decode() for cid, p in zip(conversion_ids, owners, strict=True) if p is not None},
        )

    async def save(self, results: Mapping[str, StepResult], partitions: Mapping[str, int]) -> set[str]:
        """Write every changed person in one pipeline; returns the persons refused (stale version).

        Anonymous persons merged by identify events are tombstoned first, in a pipeline of
        their own; a person whose tombstone is refused is refused too (and redone)."""
        refused_first = await self._tombstone(results)
        pipe = self.redis.pipeline(transaction=False)
        written = [pid for pid, r in results.items() if r.changed and pid not in refused_first]
        values = [await self._queue_apply(pipe, pid, results[pid]) for pid in written]
        if not written:
            return refused_first
        refused = set(refused_first)
        for pid, value, ok in zip(written, values, await self._run(pipe), strict=True):
            if ok:
                state = results[pid].state
                fence = dataclasses.replace(state.fence, version=state.fence.version + 1)
                self._remember(pid, value, PersonState(state.journey, fence))
            else:
                refused.add(pid)
        return refused

    def _decode(self, pid: str, raw: bytes | None) -> PersonState:
        if raw is None:
            return PersonState()
        known = self._decoded.pop(pid, None)
        state = known[1] if known is not None and known[0] == raw else decode_state(raw)
        self._remember(pid, raw, state)
        return state

    def _remember(self, pid: str, raw: bytes, state: PersonState) -> None:
        self._decoded.pop(pid, None)
        self._decoded[pid] = (raw, state)  # most recent last
        while len(self._decoded) > self.cached_states:
            del self._decoded[next(iter(self._decoded))]

    async def _tombstone(self, results: Mapping[str, StepResult]) -> set[str]:
        owners = [(pid, anon, state) for pid, r in results.items() for anon, state in r.tombstones.items()]
        if not owners:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for _pid, anon, state in owners:
            await self._queue_apply(pipe, anon, StepResult(state, {}, [], [], 0, True))
        replies = await self._run(pipe)
        return {pid for (pid, _anon, _state), ok in zip(owners, replies, strict=True) if not ok}

    @staticmethod
    def _queue_indexes(pipe: Any, persons: Mapping[str, tuple[int, StepResult]]) -> None:
        """Keep the sweeper's indexes (open sessions and live journeys of each partition):
        at most one ZADD and one ZREM per index and partition."""
        adds: dict[str, dict[str, int]] = {}
        removes: dict[str, list[str]] = {}
        for pid, (partition, result) in persons.items():
            journey = result.state.journey
            for name, score in (
                ("open", journey.session_open and journey.session_last_ts),
                ("active", journey.last_ts),
            ):
                index = partition_key(partition, name)
                if score:
                    adds.setdefault(index, {})[pid] = score
                else:
                    removes.setdefault(index, []).append(pid)
        for index, members in adds.items():
            pipe.zadd(index, members)
        for index, pids in removes.items():
            pipe.zrem(index, *pids)

    async def _queue_apply(self, pipe: Any, pid: str, result: StepResult) -> bytes:
        """Queue the person's fenced write on `pipe`; returns the state value written."""
        state = result.state
        outbox = [x for o, msgs in result.outbox.items() for x in (o, _outbox_entry(msgs))]
        keys = [key(pid, "state"), key(pid, "out")]
        keys += [key(pid, f"conv:{c.conversion_id}") for c in result.conversions]
        value = encode_state(state, state.fence.version + 1)
        args: list[bytes | str | int] = [
            state.fence.version,
            value,
            self.ttls.journey_ms,
            self.outbox_entries,
            self.ttls.outbox_ms,
            self.ttls.conversion_ms,
            *(c.value for c in result.conversions),
            *outbox,
        ]
        await self._apply(keys=keys, args=args, client=pipe)  # queues EVALSHA on the pipeline
        return value

    async def replayed_outputs(
        self, wanted: Mapping[str, Sequence[int]]
    ) -> dict[str, dict[int, list[Message]]]:
        """Outputs stored for offsets being replayed, per person and offset, in one round trip."""
        pids = list(wanted)
        if not pids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for pid in pids:
            pipe.hmget(key(pid, "out"), list(wanted[pid]))
        found: dict[str, dict[int, list[Message]]] = {}
        for pid, entries in zip(pids, await self._run(pipe), strict=True):
            found[pid] = {o: _outputs(raw) for o, raw in zip(wanted[pid], entries, strict=True) if raw}
        return found

    async def clear_outbox(self, delivered: Mapping[str, Sequence[int]]) -> None:
        """Drop outbox entries whose outputs Kafka has acknowledged (person -> offsets): the
        outbox only bridges a crash between the state write and the delivery."""
        if not delivered:
            return
        pipe = self.redis.pipeline(transaction=False)
        for pid, offsets in delivered.items():
            pipe.hdel(key(pid, "out"), *offsets)
        await self._run(pipe)

    async def add_aggregates(
        self, batches: Mapping[int, PartitionBatch], persons: Mapping[str, tuple[int, StepResult]]
    ) -> None:
        """One round trip after the person writes: per partition the path increments (fenced
        by offset) and the event-time watermark; per accepted person (`persons`: person ->
        (partition, result)) the sweeper's indexes and the conversion index. Index writes are
        idempotent, so persons whose events were all replays refresh theirs too."""
        if not batches and not persons:
            return
        pipe = self.redis.pipeline(transaction=False)
        self._queue_indexes(pipe, persons)
        for pid, (_partition, result) in persons.items():
            for stored in result.conversions:  # where revenue for a conversion goes
                pipe.set(conversion_index_key(stored.conversion_id), pid, px=self.ttls.conversion_ms)
        for partition, batch in batches.items():
            args: list[int | str] = [batch.last_offset, self.max_paths, self.ttls.paths_ms, batch.max_ts]
            for inc in batch.increments:
                args += [inc.offset, inc.path, inc.conversions, inc.value_micros, inc.nulls]
            keys = [partition_key(partition, name) for name in ("paths", "paths-fence", "watermark")]
            await self._paths(keys=keys, args=args, client=pipe)
        await self._run(pipe)

    async def watermarks(self, partitions: Sequence[int]) -> dict[int, int]:
        """Each partition's event-time watermark (max event ts applied), where there is one."""
        pipe = self.redis.pipeline(transaction=False)
        for partition in partitions:
            pipe.get(partition_key(partition, "watermark"))
        return {p: int(w) for p, w in zip(partitions, await self._run(pipe), strict=True) if w is not None}

    async def path_stats(self, partitions: int) -> dict[tuple[str, ...], PathCount]:
        """Every partition's path counts, summed (integer sums: exact and order-free)."""
        pipe = self.redis.pipeline(transaction=False)
        for partition in range(partitions):
            pipe.hgetall(partition_key(partition, "paths"))
        totals: dict[str, list[int]] = {}
        for raw in await self._run(pipe):
            for field, count in raw.items():
                kind, _, path = field.decode().partition("|")
                if path:
                    totals.setdefault(path, [0, 0, 0])["cvn".index(kind)] += int(count)
        return {
            parse_path(path): PathCount(c, v / VALUE_SCALE, n) for path, (c, v, n) in sorted(totals.items())
        }

    async def store_snapshot(self, snapshot_id: str, doc: bytes) -> bool:
        """Make this the current snapshot; True when it changed (publish it)."""
        async with asyncio.timeout(self.timeout_s):
            return bool(await self._snapshot(keys=[SNAPSHOT_ID, SNAPSHOT], args=[snapshot_id, doc]))

    async def current_snapshot(self) -> bytes | None:
        async with asyncio.timeout(self.timeout_s):
            return await self.redis.get(SNAPSHOT)

    async def due(
        self, partition: int, kind: str, before_ts: int, limit: int = 1000
    ) -> list[tuple[str, int]]:
        """(person, score) of `partition` in index `kind` ("open" or "active") scored before `before_ts`."""
        async with asyncio.timeout(self.timeout_s):
            raw = await self.redis.zrangebyscore(
                partition_key(partition, kind), "-inf", before_ts, start=0, num=limit, withscores=True
            )
        return [(member.decode(), int(score)) for member, score in raw]
