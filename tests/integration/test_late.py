"""Out-of-order events on the real pipeline: a late touch within grace merges two sessions
and issues a correction; a too-late one goes to the DLQ; batch mode agrees."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from stream.kafka_io import event_record, produce
from stream.topics import RAW
from tests.batch_oracle import oracle_lines
from tests.integration.test_pipeline import MIN, T0, convert, touch, values

pytestmark = pytest.mark.integration


def test_late_touch_corrects_and_too_late_is_rejected(make_settings, start_worker, tmp_path) -> None:
    """email at 0 and 31 min (two sessions), a purchase at 32 credited 50/50; a late email at
    25 min (7 min behind: inside the 10-min grace) joins them into one session, so the
    purchase is re-emitted as revision 1 with all credit on one touch. An sms stamped 5 min
    arrives 27 min behind: too late."""
    settings = make_settings()
    start_worker(settings)
    events = [
        touch("fay", 1, T0, "email", campaign="spring"),
        touch("fay", 2, T0 + 31 * MIN, "email", campaign="spring"),
        convert("fay", 3, T0 + 32 * MIN, "purchase", 80.0),
        touch("fay", 4, T0 + 25 * MIN, "email", campaign="spring"),
        touch("fay", 5, T0 + 5 * MIN, "sms"),
    ]
    asyncio.run(
        produce(settings.kafka_bootstrap_servers, settings.topic(RAW), [event_record(e) for e in events])
    )
    out = values(settings.kafka_bootstrap_servers, settings.topic("attribution.conversions"), count=2)
    first, second = sorted(out, key=lambda d: d["revision"])
    assert (first["attribution_id"], second["attribution_id"]) == ("fay-3", "fay-3")
    assert (first["revision"], second["revision"]) == (0, 1)
    assert first["models"]["linear"]["values"] == [40.0, 40.0]
    assert second["models"]["linear"]["values"] == [80.0]
    assert [t["session_id"] for t in second["touchpoints"]] == ["fay-1"]
    dlq = values(settings.kafka_bootstrap_servers, settings.topic("touchpoints.dlq"), count=1)
    assert [(d["reason_code"], orjson.loads(d["raw"])["event_id"]) for d in dlq] == [("too_late", "fay-5")]

    batch = oracle_lines(settings, events, tmp_path)
    assert sorted(batch) == sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in out)
