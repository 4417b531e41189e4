"""The sweeper's control events and the low watermark that journeys expire by."""

from __future__ import annotations

import orjson

from stream.core.config import DAY_MS, EXPIRY_SLACK_MS, MINUTE_MS, Config, Limits, Rules
from stream.core.control import control_event, expires_before, low_watermark
from stream.core.journey import Journey
from stream.core.partitioning import partition_of
from stream.core.person import PersonState, Positioned, step
from stream.offline.replay import EventReplay
from tests.support.events import T0, touch

NOW = T0 + 10 * DAY_MS
IDLE = 10 * MINUTE_MS


def test_the_low_watermark_is_the_lowest_of_the_partitions_with_recent_events() -> None:
    marks = {0: (T0 + 5 * DAY_MS, NOW), 1: (T0 + 2 * DAY_MS, NOW - IDLE), 2: (T0, NOW - IDLE - 1)}
    # partition 2 had no event for longer than IDLE: it holds nobody back
    assert low_watermark(marks, NOW, IDLE) == T0 + 2 * DAY_MS


def test_when_every_partition_is_idle_the_lowest_counts() -> None:
    marks = {0: (T0 + 5 * DAY_MS, NOW - 2 * IDLE), 1: (T0 + 2 * DAY_MS, NOW - 3 * IDLE)}
    assert low_watermark(marks, NOW, IDLE) == T0 + 2 * DAY_MS
    assert low_watermark({}, NOW, IDLE) is None


def test_a_journey_expires_once_idle_for_the_lookback_and_the_slack() -> None:
    rules = Rules(lookback_ms=30 * DAY_MS)
    assert expires_before(T0, rules) == T0 - 30 * DAY_MS - EXPIRY_SLACK_MS


def test_a_tombstone_ignores_control_events() -> None:
    """An anonymous person merged into a customer keeps forwarding its stragglers: no
    session of its own to close, no journey of its own to expire (nor a null path)."""
    tombstone = Journey(last_ts=T0, session_last_ts=T0, session_open=True, merged_into="c-1")
    state = PersonState(tombstone)
    events = [
        Positioned("persons:0", 1, control_event("close_idle", "a-1", T0, T0 + DAY_MS)),
        Positioned("persons:0", 2, control_event("expire", "a-1", T0, T0 + 400 * DAY_MS)),
    ]
    result = step("a-1", state, events, Config(models=("linear",)))
    assert result.state.journey == tombstone
    assert result.outbox == {}


def test_the_batch_mode_expires_by_the_lowest_raw_partition_watermark() -> None:
    """Customers on two raw partitions, one of which runs 45 days ahead: a journey idle for
    the lookback behind the ahead partition, but not behind the other, is kept until the
    other partition's events get there too."""
    ahead, behind, neighbour = _customers(partitions=2)  # neighbour: on behind's partition
    events = [
        touch(behind, 1, T0, "email"),
        touch(behind, 2, T0 + 5 * DAY_MS, "email"),
        touch(ahead, 1, T0 + 45 * DAY_MS, "display"),
    ]
    replay = _replayed(events)
    assert replay.finish() == {}  # the low watermark is day 5: nothing idle for 30 days before it
    assert len(replay.states[behind].journey.touches) == 2

    replay = _replayed([*events, touch(neighbour, 1, T0 + 50 * DAY_MS, "sms")])
    paths = replay.finish()  # the low watermark is day 45: behind idle for 40 days
    assert {path: count.nulls for path, count in paths.items()} == {("email", "email"): 1}
    assert replay.states[behind].journey == Journey()


def _replayed(events: list[dict]) -> EventReplay:
    config = Config(Rules(lookback_ms=30 * DAY_MS), models=("linear",))
    replay = EventReplay(config, Limits(), NOW + 100 * DAY_MS, partitions=2)
    list(replay.run(orjson.dumps(e) for e in events))
    return replay


def _customers(partitions: int) -> tuple[str, str, str]:
    """A customer on one partition, and two on another (Kafka's partitioner)."""
    names = [f"c-{n}" for n in range(50)]
    first = names[0]
    others = [
        n for n in names if partition_of(n.encode(), partitions) != partition_of(first.encode(), partitions)
    ]
    return first, others[0], others[1]
