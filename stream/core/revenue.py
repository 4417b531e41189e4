"""Late revenue (the CRM "closed won" case): re-attribute a value over a stored conversion.

Pure. When a conversion is attributed its value is stored, and so is a running revenue
total (`Stored`). A later `revenue` event naming its `conversion_id` is credited over the very
touchpoints and shares of that stored attribution, under every model, and emitted as an
`attribution.conversions` value of kind `revenue` that refers to the original
`attribution_id`. Several revenue events for one conversion add up (`Revenue.total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from stream.core.output import SCHEMA_VERSION
from stream.core.record_codec import Basis, decode_record, encode_record
from stream.core.records import Event


@dataclass(frozen=True, slots=True)
class Revenue:
    """What `ts:{p:ID}:revenue:<conversion_id>` holds: the revenue credited so far."""

    total: float = 0.0
    events: int = 0

    def dumps(self) -> bytes:
        return orjson.dumps({"events": self.events, "total": self.total})

    @classmethod
    def loads(cls, raw: bytes | None) -> Revenue:
        if not raw:
            return cls()
        doc = orjson.loads(raw)
        return cls(doc["total"], doc["events"])


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored conversion: its latest attribution value (`ts:{p:ID}:conv:<conversion_id>`)
    and its revenue so far (`ts:{p:ID}:revenue:<conversion_id>`). The two are kept apart so
    that a revision of the attribution never touches the revenue, and revenue never
    rewrites the attribution."""

    attribution: dict[str, Any]  # the conversion's latest attribution.conversions value
    revenue: Revenue = Revenue()
    basis: Basis | None = None  # what its heuristic shares were computed from

    def attribution_bytes(self) -> bytes:
        """The compact record (`record_codec`): what the value holds, less what derives again."""
        return encode_record(self.attribution, self.basis)

    @classmethod
    def loads(cls, attribution: bytes, revenue: bytes | None = None) -> Stored:
        doc, basis = decode_record(attribution)
        return cls(doc, Revenue.loads(revenue), basis)


def revenue_doc(event: Event, stored: Stored) -> tuple[dict[str, Any], Stored]:
    """The `kind: revenue` value for one revenue event, and the updated stored record."""
    original = stored.attribution
    total = stored.revenue.total + event.value
    doc = {
        **{
            k: original[k]
            for k in ("person_id", "touchpoints", "unattributed", "model_snapshot", "conversion")
        },
        "schema_version": SCHEMA_VERSION,
        "kind": "revenue",
        "attribution_id": event.event_id,
        "refers_to": original["attribution_id"],
        "revision": 0,
        "revenue": {
            "event_id": event.event_id,
            "ts": event.ts,
            "value": event.value,
            "currency": event.currency or original["conversion"]["currency"],
            "total_value": total,
            "events": stored.revenue.events + 1,
        },
        "models": {
            name: {"shares": credit["shares"], "values": [share * event.value for share in credit["shares"]]}
            for name, credit in original["models"].items()
        },
    }
    return doc, Stored(original, Revenue(total, stored.revenue.events + 1), stored.basis)
