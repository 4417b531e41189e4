"""Validation of raw input values (docs/architecture.md): bytes in, `Event` or `Rejection` out.

Pure: no I/O. Failures are data — a `Rejection` with a stable reason code —
never exceptions, so a bad value can't stop a worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from stream.core.config import Limits
from stream.core.records import Event

CHANNELS = frozenset(
    [
        "paid_search",
        "paid_social",
        "organic_search",
        "organic_social",
        "email",
        "sms",
        "push",
        "display",
        "video",
        "affiliate",
        "referral",
        "direct",
        "ai_answer",
        "call_center",
        "chat",
        "in_store",
        "event",
        "direct_mail",
        "other",
    ]
)
MEDIUM_KINDS = frozenset({"digital", "physical", "virtual"})
DIRECTNESS = frozenset({"direct", "indirect"})
STAGES = frozenset({"pre_purchase", "purchase", "post_purchase"})
TYPES = frozenset({"interaction", "conversion", "identify", "revenue", "spend"})
SPEND_PREFIX = "spend:"  # a spend event's key and person: spend:<channel>
MIN_TS = 946_684_800_000  # 2000-01-01T00:00:00Z: anything older is a broken clock
MAX_ID_LEN = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TEXT_LEN = 512

REASONS = (
    "too_large",
    "not_json",
    "not_object",
    "unknown_type",
    "missing_field",
    "wrong_type",
    "bad_value",
    "bad_ts",
    "ts_out_of_range",
    "context_too_large",
)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason_code: str
    error: str


class _Invalid(Exception):
    def __init__(self, reason_code: str, error: str) -> None:
        super().__init__(error)
        self.rejection = Rejection(reason_code, error)


def validate(raw: bytes | None, limits: Limits, now_ms: int) -> Event | Rejection:
    """Parse and check one raw value; `now_ms` bounds future timestamps."""
    if raw is None:
        return Rejection("not_json", "value is empty (null)")
    if len(raw) > limits.max_value_bytes:
        return Rejection("too_large", f"value is {len(raw)} bytes, limit {limits.max_value_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"not valid JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejection("not_object", f"value is a JSON {type(doc).__name__}, not an object")
    try:
        return _event(doc, limits, now_ms)
    except _Invalid as invalid:
        return invalid.rejection


def _event(doc: dict[str, Any], limits: Limits, now_ms: int) -> Event:
    kind = _text(doc, "type", required=True)
    if kind not in TYPES:
        raise _Invalid("unknown_type", f"unknown type {kind!r}; expected one of {sorted(TYPES)}")
    common = {
        "event_id": _text(doc, "event_id", required=True, limit=MAX_ID_LEN),
        "type": kind,
        "ts": _ts(doc.get("ts"), limits, now_ms),
        "anonymous_id": _text(doc, "anonymous_id", limit=MAX_ID_LEN),
        "customer_id": _text(doc, "customer_id", limit=MAX_ID_LEN),
    }
    if kind == "revenue":
        person = common["customer_id"] or common["anonymous_id"] or ""
    elif kind == "spend":  # belongs to no person: its channel's counters take it
        common["anonymous_id"] = common["customer_id"] = None
        person = SPEND_PREFIX + _enum(doc, "channel", CHANNELS, required=True)
    else:
        person = common["customer_id"] or common["anonymous_id"]
        if person is None:
            raise _Invalid("missing_field", "needs anonymous_id or customer_id")
    if kind == "identify" and not (common["customer_id"] and common["anonymous_id"]):
        raise _Invalid("missing_field", "identify needs both anonymous_id and customer_id")
    return Event(person_id=person, **common, **_TYPE_FIELDS[kind](doc, limits))


def _interaction_fields(doc: dict[str, Any], limits: Limits) -> dict[str, Any]:
    return {
        "channel": _enum(doc, "channel", CHANNELS, required=True),
        "interaction": _text(doc, "interaction"),
        "source": _text(doc, "source"),
        "medium": _text(doc, "medium"),
        "campaign": _text(doc, "campaign"),
        "term": _text(doc, "term"),
        "content": _text(doc, "content"),
        "medium_kind": _enum(doc, "medium_kind", MEDIUM_KINDS),
        "directness": _enum(doc, "directness", DIRECTNESS),
        "stage": _enum(doc, "stage", STAGES),
        "context": _context(doc.get("context"), limits),
        "cost": _number(doc, "cost"),
    }


def _conversion_fields(doc: dict[str, Any], limits: Limits) -> dict[str, Any]:
    return {
        "conversion": _text(doc, "conversion", required=True),
        "conversion_id": _text(doc, "conversion_id", limit=MAX_ID_LEN) or doc["event_id"],
        "value": _number(doc, "value"),
        "currency": _text(doc, "currency"),
    }


def _revenue_fields(doc: dict[str, Any], limits: Limits) -> dict[str, Any]:
    return {
        "conversion_id": _text(doc, "conversion_id", required=True, limit=MAX_ID_LEN),
        "value": _number(doc, "value"),
        "currency": _text(doc, "currency"),
    }


def _spend_fields(doc: dict[str, Any], limits: Limits) -> dict[str, Any]:
    if doc.get("amount") is None:
        raise _Invalid("missing_field", "missing required field 'amount'")
    return {
        "channel": _enum(doc, "channel", CHANNELS, required=True),
        "campaign": _text(doc, "campaign"),
        "term": _text(doc, "term"),
        "value": _number(doc, "amount"),
        "currency": _text(doc, "currency", required=True),
    }


_TYPE_FIELDS = {
    "interaction": _interaction_fields,
    "conversion": _conversion_fields,
    "identify": lambda doc, limits: {},
    "revenue": _revenue_fields,
    "spend": _spend_fields,
}


def _text(doc: dict[str, Any], name: str, *, required: bool = False, limit: int = MAX_TEXT_LEN) -> Any:
    value = doc.get(name)
    if value is None:
        if required:
            raise _Invalid("missing_field", f"missing required field {name!r}")
        return None
    if not isinstance(value, str):
        raise _Invalid("wrong_type", f"{name!r} must be a string, got {type(value).__name__}")
    if not value or len(value) > limit:
        raise _Invalid("bad_value", f"{name!r} must be 1..{limit} characters")
    return value


def _enum(doc: dict[str, Any], name: str, allowed: frozenset[str], *, required: bool = False) -> Any:
    value = _text(doc, name, required=required)
    if value is not None and value not in allowed:
        raise _Invalid("bad_value", f"{name!r} is {value!r}; expected one of {sorted(allowed)}")
    return value


def _number(doc: dict[str, Any], name: str) -> float:
    value = doc.get(name)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("wrong_type", f"{name!r} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or value > 1e15:
        raise _Invalid("bad_value", f"{name!r} must be a finite number in 0..1e15")
    return float(value)


def _context(value: Any, limits: Limits) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid("wrong_type", f"'context' must be an object, got {type(value).__name__}")
    size = len(orjson.dumps(value))
    if size > limits.max_context_bytes:
        raise _Invalid("context_too_large", f"context is {size} bytes, limit {limits.max_context_bytes}")
    return value


def _ts(value: Any, limits: Limits, now_ms: int) -> int:
    if value is None:
        raise _Invalid("missing_field", "missing required field 'ts'")
    if isinstance(value, bool):
        raise _Invalid("wrong_type", "'ts' must be an ISO-8601 string or epoch milliseconds")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        ms = _iso_ms(value)
    else:
        raise _Invalid(
            "wrong_type", f"'ts' must be an ISO-8601 string or epoch milliseconds, got {type(value).__name__}"
        )
    if not MIN_TS <= ms <= now_ms + limits.max_future_skew_ms:
        raise _Invalid("ts_out_of_range", f"'ts' {value!r} is before 2000 or too far in the future")
    return ms


def _iso_ms(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid("bad_ts", f"'ts' {text[:64]!r} is not ISO-8601") from None
    if parsed.tzinfo is None:
        raise _Invalid("bad_ts", f"'ts' {text[:64]!r} has no time zone")
    return (parsed - _EPOCH) // timedelta(milliseconds=1)
