"""A seeded corpus of hostile raw values, mutated from valid events.

Every value returned is one that `validate` rejects (or, for `duplicate_event_id`, a valid
event that reuses an earlier event's id with other content). Categories: truncated JSON,
deep nesting, huge strings, NaN/Infinity, a wrong type for every field, invalid UTF-8,
timestamps far in the past or future, unknown types, missing ids, non-objects.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from stream.core.config import Limits
from stream.core.validation import Rejection, validate

FIELDS = (
    "event_id",
    "type",
    "ts",
    "anonymous_id",
    "customer_id",
    "interaction",
    "channel",
    "source",
    "medium",
    "campaign",
    "medium_kind",
    "directness",
    "stage",
    "context",
    "cost",
)
WRONG = (123, 1.5, True, [], ["x"], {}, {"a": 1}, "", "x" * 600)


@dataclass(frozen=True)
class Hostile:
    key: bytes | None
    value: bytes
    category: str


def _truncated(rng: random.Random, e: dict[str, Any]) -> bytes:
    raw = orjson.dumps(e)
    return raw[: rng.randrange(1, len(raw) - 1)]


def _deep(rng: random.Random, e: dict[str, Any]) -> bytes:
    depth = rng.randint(1100, 5000)
    return b'{"event_id":"d","type":"interaction","context":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


def _huge(rng: random.Random, e: dict[str, Any]) -> bytes:
    field = rng.choice(("event_id", "channel", "campaign", "customer_id"))
    return orjson.dumps({**e, field: "x" * rng.choice((600, 5_000, 70_000, 200_000))})


def _nan(rng: random.Random, e: dict[str, Any]) -> bytes:
    literal = rng.choice((b"NaN", b"Infinity", b"-Infinity", b"nan", b"1e999999"))
    return orjson.dumps({**e, "cost": 12345.5}).replace(b"12345.5", literal)


def _wrong_type(rng: random.Random, e: dict[str, Any]) -> bytes:
    return orjson.dumps({**e, rng.choice(FIELDS): rng.choice(WRONG)})


def _utf8(rng: random.Random, e: dict[str, Any]) -> bytes:
    raw = orjson.dumps(e)
    at = raw.index(b'"channel":"') + 11
    return raw[:at] + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c")) + raw[at:]


def _ts(rng: random.Random, e: dict[str, Any]) -> bytes:
    bad = rng.choice(
        (
            0,
            -1,
            10**15,
            946_684_799_999,
            "1970-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "2026-13-45T99:00:00Z",
            "2026-03-01T10:00:00",
            "yesterday",
        )
    )
    return orjson.dumps({**e, "ts": bad})


def _unknown_type(rng: random.Random, e: dict[str, Any]) -> bytes:
    return orjson.dumps({**e, "type": rng.choice(("click", "Interaction", "purchase", "sweep", "expire"))})


def _missing(rng: random.Random, e: dict[str, Any]) -> bytes:
    doc = dict(e)
    for field in rng.sample(("event_id", "ts", "type", "channel"), rng.randint(1, 2)):
        doc.pop(field, None)
    if rng.random() < 0.5:
        doc.pop("customer_id", None)
        doc.pop("anonymous_id", None)
    return orjson.dumps(doc)


def _not_object(rng: random.Random, e: dict[str, Any]) -> bytes:
    return rng.choice((b"null", b"[]", b"42", b'"text"', b"true", b"", b"   ", orjson.dumps([e])))


MUTATIONS: dict[str, Callable[[random.Random, dict[str, Any]], bytes]] = {
    "truncated": _truncated,
    "deep_nesting": _deep,
    "huge_string": _huge,
    "nan_infinity": _nan,
    "wrong_type": _wrong_type,
    "invalid_utf8": _utf8,
    "bad_ts": _ts,
    "unknown_type": _unknown_type,
    "missing_field": _missing,
    "not_object": _not_object,
}


def hostile(
    rng: random.Random, good: list[dict[str, Any]], count: int, limits: Limits, now_ms: int
) -> list[Hostile]:
    """`count` rejected values (null keys on a fifth of them), mutated from `good` interactions."""
    base = [e for e in good if e["type"] == "interaction"]
    out: list[Hostile] = []
    names = sorted(MUTATIONS)
    while len(out) < count:
        category = names[len(out) % len(names)]
        event = rng.choice(base)
        value = MUTATIONS[category](rng, event)
        if isinstance(validate(value, limits, now_ms), Rejection):
            key = None if rng.random() < 0.2 else event["customer_id"].encode()
            out.append(Hostile(key, value, category))
    return out


def conflicting_duplicates(rng: random.Random, good: list[dict[str, Any]], count: int) -> list[Hostile]:
    """Valid events reusing an earlier interaction's event_id (same person) with another channel."""
    base = [e for e in good if e["type"] == "interaction"]
    picked = rng.sample(base, count)
    return [
        Hostile(
            e["customer_id"].encode(),
            orjson.dumps({**e, "channel": "sms" if e["channel"] != "sms" else "push"}),
            "duplicate_event_id",
        )
        for e in picked
    ]
