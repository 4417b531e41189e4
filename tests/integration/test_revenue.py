"""Late revenue on the real pipeline: closed-won value credited over the lead's journey."""

from __future__ import annotations

import orjson
import pytest

from stream.core.topics import CONVERSIONS, CREDITS, DLQ, RAW
from tests.support.events import DAY, HOUR, SCRIPT, T0, convert, revenue, touch
from tests.support.kafka import publish, values
from tests.support.redis_target import SINGLE_AND_CLUSTER
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration


@SINGLE_AND_CLUSTER
def test_revenue_months_after_a_lead_is_credited_over_the_leads_journey(make_settings, start_worker) -> None:
    """erin: paid_search, email, then a lead. 60 days later the CRM closes 5000, later 1000 more
    (naming only the lead's conversion_id). linear credits 2500/2500 then 500/500, first_touch
    all to paid_search; the totals add up to 6000. A revenue event for an unknown conversion
    goes to the DLQ."""
    settings = make_settings()
    start_worker(settings)
    lead = [
        touch("erin", 1, T0, "paid_search", campaign="brand"),
        touch("erin", 2, T0 + DAY, "email"),
        convert("erin", 3, T0 + DAY + HOUR, "lead", 0.0),
    ]
    later = [
        revenue("crm-1", T0 + 60 * DAY, "lead-erin-3", 5000.0),
        revenue("crm-2", T0 + 61 * DAY, "lead-erin-3", 1000.0, customer_id="erin"),
        revenue("crm-3", T0 + 61 * DAY, "lead-nobody", 10.0),
    ]
    raw = settings.topic(RAW)
    publish(settings, raw, lead + SCRIPT)
    wait_drained(settings)  # the lead is stored first
    assert len(values(settings, settings.topic(CONVERSIONS))) == 5
    publish(settings, raw, later)
    wait_drained(settings)

    out = values(settings, settings.topic(CONVERSIONS))
    assert len(out) == 7
    docs = {d["attribution_id"]: d for d in out}
    first, second = docs["crm-1"], docs["crm-2"]
    assert (first["kind"], first["refers_to"], first["person_id"]) == ("revenue", "erin-3", "erin")
    assert first["models"]["linear"] == {"shares": [0.5, 0.5], "values": [2500.0, 2500.0]}
    assert first["models"]["first_touch"]["values"] == [5000.0, 0.0]
    assert second["models"]["linear"]["values"] == [500.0, 500.0]
    # the two arrive through different raw partitions (one has no key), so either may come
    # first: the one applied second carries the running total of both
    totals = sorted(
        (d["revenue"]["events"], d["revenue"]["total_value"], d["revenue"]["value"]) for d in (first, second)
    )
    assert totals[1][:2] == (2, 6000.0) and totals[0][0] == 1 and totals[0][1] == totals[0][2]
    assert [t["channel"] for t in second["touchpoints"]] == ["paid_search", "email"]

    credits = [c for c in values(settings, settings.topic(CREDITS)) if c["kind"] == "revenue"]
    assert sum(c["value"] for c in credits if c["model"] == "time_decay") == pytest.approx(6000.0)
    dlq = values(settings, settings.topic(DLQ))
    assert [(d["reason_code"], orjson.loads(d["raw"])["event_id"]) for d in dlq] == [
        ("unknown_conversion", "crm-3")
    ]
