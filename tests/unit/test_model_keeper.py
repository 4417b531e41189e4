"""The model refresher (`stream.runtime.models.ModelKeeper`) against an in-memory store:
Redis keeps the snapshot in its published form, and a stored snapshot it cannot read (the
old form) is ignored at start until the next refresh replaces it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.attribution.paths import PathCount
from stream.attribution.snapshot import build
from stream.core.output import Message, dumps
from stream.core.topics import MODELS as MODELS_TOPIC
from stream.runtime.models import ModelKeeper

STATS = {("email", "direct"): PathCount(conversions=2, value=30.0, nulls=1), ("direct",): PathCount(nulls=2)}
OLD_FORM = {  # what the previous release stored: one document, shapley with `exact`
    "snapshot_id": "0123456789abcdef",
    "markov": {"order": 1, "removal_effects": {"direct": 1.0}},
    "shapley": {"values": {"direct": 0.5}, "exact": True, "error_bound": None},
    "paths": 1,
    "conversions": 1.0,
    "nulls": 0.0,
}


@dataclass
class Store:
    stored: bytes | None = None
    stored_id: str | None = None

    async def current_snapshot(self) -> bytes | None:
        return self.stored

    async def path_stats(self, partitions: int) -> dict:
        return STATS

    async def store_snapshot(self, snapshot_id: str, doc: bytes) -> bool:
        changed = snapshot_id != self.stored_id
        self.stored_id, self.stored = snapshot_id, doc
        return changed


@dataclass
class Emitter:
    sent: list[Message] = field(default_factory=list)

    async def emit(self, messages: list[Message]) -> None:
        self.sent += messages


def keeper(store: Store, emitter: Emitter | None = None) -> ModelKeeper:
    return ModelKeeper(store, emitter or Emitter(), partitions=4)  # type: ignore[arg-type]


def test_load_reads_the_published_form() -> None:
    snapshot = build(STATS)
    models = keeper(Store(dumps(snapshot.published())))
    asyncio.run(models.load())
    assert models.current == snapshot


def test_load_ignores_an_unreadable_snapshot_with_one_log_line(caplog: Any) -> None:
    for raw in (dumps(OLD_FORM), b"{not json"):
        models = keeper(Store(raw))
        with caplog.at_level(logging.WARNING, logger="touchstream.models"):
            caplog.clear()
            asyncio.run(models.load())
        assert models.current is None
        [record] = caplog.records
        assert record.getMessage().startswith("ignoring the stored model snapshot until the next refresh: ")


def test_refresh_replaces_an_old_snapshot_stores_and_publishes_the_published_form() -> None:
    store, emitter = Store(dumps(OLD_FORM), OLD_FORM["snapshot_id"]), Emitter()
    models = keeper(store, emitter)
    asyncio.run(models.load())
    snapshot = asyncio.run(models.refresh())
    assert snapshot == build(STATS) == models.current
    assert orjson.loads(store.stored or b"") == snapshot.published()
    assert [(m.topic, m.key, orjson.loads(m.value)) for m in emitter.sent] == [
        (MODELS_TOPIC, v["model"].encode(), v) for v in snapshot.published()
    ]
    asyncio.run(models.refresh())  # the same counts: the same id, nothing published again
    assert len(emitter.sent) == 3
