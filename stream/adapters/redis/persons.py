"""Person states in Redis: batched loads, fenced atomic writes, the outbox.

A batch costs two round trips: one pipeline loading every person (one GET each), one
pipeline of per-person `apply.lua` calls. The script refuses a write whose expected
version is stale (another writer got there first: a sweeper, or a worker that owned the
partition before a rebalance); the caller reloads and recomputes that person.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from stream.adapters.redis.connection import Client, RoundTrips, Ttls
from stream.adapters.redis.keys import DEFAULT_PREFIX
from stream.core.output import Message
from stream.core.person import PersonState, StepResult
from stream.core.record_codec import RecordError
from stream.core.revenue import Stored
from stream.core.state_codec import decode_outbox_entry, decode_state, encode_outbox_entry, encode_state

log = logging.getLogger("touchstream.redis")


class PersonStore(RoundTrips):
    """Loads and stores person states; one instance per worker."""

    def __init__(
        self,
        redis: Client,
        ttls: Ttls,
        outbox_entries: int = 64,
        cached_states: int = 10_000,
        timeout_s: float = 5.0,
        credit_models: Sequence[str] | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(redis, ttls, timeout_s, prefix)
        # person -> (stored value, its decoding): a load that finds the very bytes this worker
        # last wrote or read skips the decompression and parsing (bytes equal, state equal)
        self._decoded: dict[str, tuple[bytes, PersonState]] = {}
        self.cached_states = cached_states
        self.outbox_entries = outbox_entries  # recent writes whose outputs a replay can re-emit
        self._apply = self.lua("apply")
        self.credit_models = credit_models  # the credit rows a replayed conversion gets

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
        pipe = self.pipeline()
        for pid in person_ids:
            for who in (pid, *others.get(pid, ())):
                pipe.get(self.keys.person(who, "state"))
            for cid in conversions.get(pid, ()):
                pipe.get(self.keys.person(pid, f"conv:{cid}"))
                pipe.get(self.keys.person(pid, f"revenue:{cid}"))
        replies = iter(await self.run(pipe))
        states = {}
        for pid in person_ids:
            own = self._decode(pid, next(replies))
            anonymous = {anon: decode_state(next(replies)) for anon in others.get(pid, ())}
            stored = {}
            for cid in conversions.get(pid, ()):
                attribution, revenue = next(replies), next(replies)
                if attribution is not None:
                    try:
                        stored[cid] = Stored.loads(attribution, revenue)
                    except RecordError as exc:  # not a poison pill: as if there were none
                        log.error("%s of %s ignored: %s", self.keys.person(pid, f"conv:{cid}"), pid, exc)
            states[pid] = PersonState(own.journey, own.fence, stored, anonymous)
        return states

    async def save(self, results: Mapping[str, StepResult]) -> set[str]:
        """Write every changed person in one pipeline; returns the persons refused (stale version).

        Anonymous persons merged by identify events are tombstoned first, in a pipeline of
        their own (an anonymous person stepped in the same batch is written there, as its
        tombstone); a person whose tombstone is refused is refused too (and redone)."""
        refused = await self._tombstone(results)
        first = {anon for r in results.values() for anon in r.tombstones}
        pipe = self.pipeline()
        written = [pid for pid, r in results.items() if r.changed and pid not in first and pid not in refused]
        values = [self._queue_apply(pipe, pid, results[pid]) for pid in written]
        if written:
            for pid, value, ok in zip(written, values, await self.run(pipe), strict=True):
                if ok:
                    self._written(pid, value, results[pid])
                else:
                    refused.add(pid)
        return refused

    def _written(self, pid: str, value: bytes, result: StepResult) -> None:
        state = result.state
        fence = dataclasses.replace(state.fence, version=state.fence.version + 1)
        self._remember(pid, value, PersonState(state.journey, fence))

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
        """Write the tombstones of the batch; the persons refused: both the anonymous person
        and the one merging it, when the anonymous person changed since it was loaded."""
        owners = [(pid, anon, state) for pid, r in results.items() for anon, state in r.tombstones.items()]
        if not owners:
            return set()
        pipe = self.pipeline()
        own = [results.get(anon) or StepResult(state, {}, [], [], 0, True) for _pid, anon, state in owners]
        values = [self._queue_apply(pipe, anon, r) for (_pid, anon, _s), r in zip(owners, own, strict=True)]
        refused = set()
        for (pid, anon, _state), result, value, ok in zip(
            owners, own, values, await self.run(pipe), strict=True
        ):
            if ok:
                self._written(anon, value, result)
            else:
                refused |= {pid, anon} if anon in results else {pid}
        return refused

    def _queue_apply(self, pipe: Any, pid: str, result: StepResult) -> bytes:
        """Queue the person's fenced write on `pipe`; returns the state value written."""
        state = result.state
        outbox = [x for o, msgs in result.outbox.items() for x in (o, encode_outbox_entry(msgs))]
        names = ["state", "out"]
        records: list[bytes] = []
        for c in result.conversions:
            if c.attribution_changed:
                names.append(f"conv:{c.conversion_id}")
                records.append(c.record.attribution_bytes())
            if c.revenue_changed:
                names.append(f"revenue:{c.conversion_id}")
                records.append(c.record.revenue.dumps())
        keys = self.keys.person_keys(pid, names)
        value = encode_state(state, state.fence.version + 1)
        args: list[bytes | str | int] = [
            state.fence.version,
            value,
            self.ttls.journey_ms,
            self.outbox_entries,
            self.ttls.outbox_ms,
            self.ttls.conversion_ms,
            *records,
            *outbox,
        ]
        self._apply.queue(pipe, keys, args)
        return value

    async def replayed_outputs(
        self, wanted: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, list[Message]]]:
        """Outputs stored for events being replayed, per person and position, in one round trip."""
        pids = list(wanted)
        if not pids:
            return {}
        pipe = self.pipeline()
        for pid in pids:
            pipe.hmget(self.keys.person(pid, "out"), list(wanted[pid]))
        found: dict[str, dict[str, list[Message]]] = {}
        for pid, entries in zip(pids, await self.run(pipe), strict=True):
            found[pid] = {
                o: decode_outbox_entry(raw, self.credit_models)
                for o, raw in zip(wanted[pid], entries, strict=True)
                if raw
            }
        return found

    async def clear_outbox(self, delivered: Mapping[str, Sequence[str]]) -> None:
        """Drop outbox entries whose outputs Kafka has acknowledged (person -> positions): the
        outbox only bridges a crash between the state write and the delivery."""
        if not delivered:
            return
        pipe = self.pipeline()
        for pid, offsets in delivered.items():
            pipe.hdel(self.keys.person(pid, "out"), *offsets)
        await self.run(pipe)
