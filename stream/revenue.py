"""Late revenue (the CRM "closed won" case): re-attribute a value over a stored conversion.

Pure. When a conversion is attributed its value is stored with a running revenue total
(`Stored`). A later `revenue` event naming its `conversion_id` is credited over the very
touchpoints and shares of that stored attribution, under every model, and emitted as an
`attribution.conversions` value of kind `revenue` that refers to the original
`attribution_id`. Several revenue events for one conversion add up (`revenue_total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from stream.output import SCHEMA_VERSION
from stream.records import Event


@dataclass(frozen=True, slots=True)
class Stored:
    """What `ts:{p:ID}:conv:<conversion_id>` holds."""

    attribution: dict[str, Any]  # the conversion's attribution.conversions value
    revenue_total: float = 0.0
    revenue_events: int = 0

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "attribution": self.attribution,
                "revenue_total": self.revenue_total,
                "revenue_events": self.revenue_events,
            },
            option=orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def loads(cls, raw: bytes) -> Stored:
        doc = orjson.loads(raw)
        return cls(doc["attribution"], doc["revenue_total"], doc["revenue_events"])


def revenue_doc(event: Event, stored: Stored) -> tuple[dict[str, Any], Stored]:
    """The `kind: revenue` value for one revenue event, and the updated stored record."""
    original = stored.attribution
    total = stored.revenue_total + event.value
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
            "events": stored.revenue_events + 1,
        },
        "models": {
            name: {"shares": credit["shares"], "values": [share * event.value for share in credit["shares"]]}
            for name, credit in original["models"].items()
        },
    }
    return doc, Stored(original, total, stored.revenue_events + 1)
