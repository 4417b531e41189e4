"""Out-of-order events on the real pipeline: a late touch bridges two sessions and another
splits one, each issuing a correction; one older than the lookback goes to the DLQ; batch
mode agrees."""

from __future__ import annotations

import orjson
import pytest

from stream.core.topics import CONVERSIONS, DLQ, RAW
from tests.support.events import DAY, MIN, T0, convert, touch
from tests.support.kafka import publish, values
from tests.support.oracle import oracle_lines
from tests.support.redis_target import SINGLE_AND_CLUSTER
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration


@SINGLE_AND_CLUSTER
def test_late_touch_corrects_and_too_late_is_rejected(make_settings, start_worker, tmp_path) -> None:
    """email at 0 and 31 min (two sessions), a purchase at 32 credited 50/50; a late email at
    25 min (7 min behind) joins them into one session, so the purchase is re-emitted as
    revision 1 with all credit on one touch; a late sms at 5 min (27 min behind) splits that
    session again (email 0 | sms 5 | email 25-31), revision 2 with a third each. An sms
    stamped 91 days before is older than the 90-day lookback: too late."""
    settings = make_settings()
    start_worker(settings)
    events = [
        touch("fay", 1, T0, "email", campaign="spring"),
        touch("fay", 2, T0 + 31 * MIN, "email", campaign="spring"),
        convert("fay", 3, T0 + 32 * MIN, "purchase", 80.0),
        touch("fay", 4, T0 + 25 * MIN, "email", campaign="spring"),
        touch("fay", 5, T0 + 5 * MIN, "sms"),
        touch("fay", 6, T0 - 91 * DAY, "sms"),
    ]
    publish(settings, settings.topic(RAW), events)
    wait_drained(settings)
    out = values(settings, settings.topic(CONVERSIONS))
    first, second, third = sorted(out, key=lambda d: d["revision"])
    assert {d["attribution_id"] for d in out} == {"fay-3"}
    assert (first["revision"], second["revision"], third["revision"]) == (0, 1, 2)
    assert first["models"]["linear"]["values"] == [40.0, 40.0]
    assert second["models"]["linear"]["values"] == [80.0]
    assert [t["session_id"] for t in second["touchpoints"]] == ["fay-1"]
    assert [t["session_id"] for t in third["touchpoints"]] == ["fay-1", "fay-5", "fay-4"]
    assert (
        third["models"]["linear"]["shares"] == [1 / 3] * 3
        and third["models"]["linear"]["values"] == [(1 / 3) * 80.0] * 3
    )
    dlq = values(settings, settings.topic(DLQ))
    assert [(d["reason_code"], orjson.loads(d["raw"])["event_id"]) for d in dlq] == [("too_late", "fay-6")]

    batch = oracle_lines(settings, events, tmp_path)
    assert sorted(batch) == sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in out)
