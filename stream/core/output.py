"""Output values of the public topics, built purely from journey outputs.

Values are plain JSON with sorted keys and `schema_version`; the same inputs
always give byte-identical values (docs/guarantees.md). Wall-clock facts never go
in a value. JSON Schemas for each value live in `stream/schemas/`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.attribution import MODELS, attribute
from stream.attribution.paths import VALUE_SCALE, format_path
from stream.attribution.snapshot import Snapshot
from stream.core.config import ModelParams
from stream.core.journey import Converted, SessionClosed
from stream.core.records import Event, Touchpoint
from stream.core.topics import CONVERSIONS, CREDITS, DLQ, IDENTITY_CONFLICTS, PATHS, SESSIONS
from stream.core.topics import MODELS as MODELS_TOPIC
from stream.core.versions import SCHEMA_VERSION

UNATTRIBUTED = "(unattributed)"


@dataclass(frozen=True, slots=True)
class Message:
    """One record to produce: a logical topic name, key and value bytes; `doc`: the value
    before serialisation, where the message was just built (never stored: a message read
    back from the outbox has none)."""

    topic: str
    key: bytes | None
    value: bytes
    doc: dict[str, Any] | None = field(default=None, compare=False, repr=False)


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def touch_doc(index: int, touch: Touchpoint) -> dict[str, Any]:
    return {
        "index": index,
        "ts": touch.ts,
        "session_id": touch.session_id,
        "channel": touch.channel,
        "source": touch.source,
        "medium": touch.medium,
        "campaign": touch.campaign,
        "term": touch.term,
        "content": touch.content,
        "interaction": touch.interaction,
        "medium_kind": touch.medium_kind,
        "directness": touch.directness,
        "stage": touch.stage,
        "context": touch.context,
        "cost": touch.cost,
    }


def attribution_doc(
    person_id: str,
    converted: Converted,
    params: ModelParams,
    models: Sequence[str],
    snapshot: Snapshot | None = None,
    revision: int = 0,
) -> dict[str, Any]:
    """The `attribution.conversions` value for one conversion, every model at once.

    Data-driven models take their shares from `snapshot` (linear while there is none);
    `model_snapshot` names it."""
    event, inp = converted.event, converted.attribution_input
    shares = attribute(inp, params, models, snapshot) if inp.touches else {name: () for name in models}
    data_driven = any(MODELS[name].needs_snapshot for name in models)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "conversion",
        "attribution_id": event.event_id,
        "revision": revision,
        "person_id": person_id,
        "conversion": {
            "event_id": event.event_id,
            "conversion": event.conversion,
            "conversion_id": event.conversion_id,
            "ts": event.ts,
            "value": event.value,
            "currency": event.currency,
        },
        "touchpoints": [touch_doc(i, t) for i, t in enumerate(inp.touches)],
        "unattributed": not inp.touches,
        "model_snapshot": snapshot.snapshot_id if snapshot and data_driven else None,
        "models": {
            name: {"shares": list(s), "values": [share * event.value for share in s]}
            for name, s in shares.items()
        },
    }


def credit_rows(doc: dict[str, Any], models: Sequence[str] | None = None) -> Iterable[dict[str, Any]]:
    """Flat `attribution.credits` rows: one per (conversion or revenue, model, touchpoint),
    for every model of the value or only for `models`.

    Each row's keys are already in sorted order (`conversion_messages` serialises ~70 rows
    per conversion and skips orjson's key sorting; a unit test holds the order)."""
    conversion = doc["conversion"]
    credited = doc.get("revenue") or conversion  # a revenue value credits the revenue
    common = (
        doc["attribution_id"],
        conversion["conversion"],
        conversion["conversion_id"],
        conversion["ts"],
        credited["currency"],
        doc["kind"],
    )
    person, revision = doc["person_id"], doc["revision"]
    touches = doc["touchpoints"]
    for model, credit in doc["models"].items():
        if models is not None and model not in models:
            continue
        if doc["unattributed"]:
            yield _row(
                common, None, UNATTRIBUTED, model, person, revision, None, 1.0, None, None, credited["value"]
            )
            continue
        for touch, share, value in zip(touches, credit["shares"], credit["values"], strict=True):
            yield _row(
                common,
                touch,
                touch["channel"],
                model,
                person,
                revision,
                touch["session_id"],
                share,
                touch["index"],
                touch["ts"],
                value,
            )


def _row(
    common: tuple[Any, ...],
    touch: dict[str, Any] | None,
    channel: str,
    model: str,
    person_id: str,
    revision: int,
    session_id: str | None,
    share: float,
    index: int | None,
    ts: int | None,
    value: float,
) -> dict[str, Any]:
    attribution_id, conversion, conversion_id, conversion_ts, currency, kind = common
    touch = touch or {}
    return {
        "attribution_id": attribution_id,
        "campaign": touch.get("campaign"),
        "channel": channel,
        "content": touch.get("content"),
        "conversion": conversion,
        "conversion_id": conversion_id,
        "conversion_ts": conversion_ts,
        "currency": currency,
        "kind": kind,
        "model": model,
        "person_id": person_id,
        "revision": revision,
        "schema_version": SCHEMA_VERSION,
        "session_id": session_id,
        "share": share,
        "term": touch.get("term"),
        "touchpoint_index": index,
        "ts": ts,
        "value": value,
    }


def conversion_messages(doc: dict[str, Any], credit_models: Sequence[str] | None = None) -> list[Message]:
    """The attribution value and its credit rows (of every model, or of `credit_models`: none
    for an empty list), ready to produce."""
    messages = [Message(CONVERSIONS, doc["person_id"].encode(), dumps(doc), doc)]
    if credit_models != ():
        rows = credit_rows(doc, credit_models)
        messages += [Message(CREDITS, row["channel"].encode(), orjson.dumps(row)) for row in rows]
    return messages


def model_messages(snapshot: Snapshot) -> list[Message]:
    """`attribution.models`: one value per data-driven model (`Snapshot.published`), keyed by
    model name."""
    return [
        Message(MODELS_TOPIC, value["model"].encode(), dumps(value), value) for value in snapshot.published()
    ]


def conflict_message(event: Event, mapped_to: str) -> Message:
    """`touchpoints.identity_conflicts`: an identify refused because the anonymous id is
    mapped to another customer already (the first mapping wins)."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event.event_id,
        "ts": event.ts,
        "anonymous_id": event.anonymous_id,
        "customer_id": event.customer_id,
        "mapped_to": mapped_to,
    }
    return Message(IDENTITY_CONFLICTS, (event.anonymous_id or "").encode(), dumps(doc))


def path_message(channels: Sequence[str], conversions: int, value: float, nulls: int) -> Message:
    """An increment of the path counts the data-driven models learn from (internal, never
    produced to Kafka): value in integer micro-units so that sums are exact."""
    doc = {
        "path": list(channels),
        "conversions": conversions,
        "value_micros": round(value * VALUE_SCALE),
        "nulls": nulls,
    }
    return Message(PATHS, None, dumps(doc))


def read_path_message(value: bytes) -> tuple[str, int, int, int]:
    """A `path_message`'s (path text, conversions, value_micros, nulls)."""
    doc = orjson.loads(value)
    return format_path(doc["path"]), doc["conversions"], doc["value_micros"], doc["nulls"]


def session_message(person_id: str, closed: SessionClosed) -> Message:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "person_id": person_id,
        "session_id": closed.touch.session_id,
        "start_ts": closed.touch.ts,
        "end_ts": closed.end_ts,
        "interactions": closed.interactions,
        "closed_by": closed.closed_by,
        "touchpoint": touch_doc(0, closed.touch),
    }
    return Message(SESSIONS, person_id.encode(), dumps(doc))


def dlq_message(
    key: bytes | None,
    raw: bytes | None,
    reason_code: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
) -> Message:
    """A dead-letter record; `raw` is kept as text when it is UTF-8, else base64."""
    try:
        text, encoding = (raw.decode(), "utf-8") if raw is not None else (None, None)
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw or b"").decode(), "base64"
    doc = {
        "schema_version": SCHEMA_VERSION,
        "error": error,
        "reason_code": reason_code,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "raw": text,
        "raw_encoding": encoding,
    }
    return Message(DLQ, key, dumps(doc))
