"""A batch of persons, stepped: identity merges inside one batch happen in the right order.

Pure. When an identify in the batch merges an anonymous person whose own events are in
the same batch, that person is stepped first and the customer merges the state those
events left — so nothing of the batch is merged too early and forwarded late. The
anonymous person is then written once, as the tombstone of what it holds (before the
customer; `stream.adapters.redis.persons`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from stream.attribution.snapshot import Snapshot
from stream.core.config import Config
from stream.core.person import PersonState, Positioned, StepResult, step


def step_batch(
    states: Mapping[str, PersonState],
    events: Mapping[str, Sequence[Positioned]],
    config: Config,
    snapshot: Snapshot | None = None,
) -> dict[str, StepResult]:
    """Every person's `step` over its events of the batch (person -> events in offset order)."""
    merged_here = {
        p.event.anonymous_id
        for pid, items in events.items()
        for p in items
        if p.event.type == "identify" and p.event.anonymous_id in events and p.event.anonymous_id != pid
    }
    results: dict[str, StepResult] = {}
    for pid in sorted(events, key=lambda pid: pid not in merged_here):  # merged ones first
        state = states[pid]
        stepped = {anon: results[anon].state for anon in state.others if anon in results}
        if stepped:
            state = dataclasses.replace(state, others={**state.others, **stepped})
        results[pid] = step(pid, state, events[pid], config, snapshot)
        for anon, tombstone in results[pid].tombstones.items():
            if anon in results:  # written as its own result: the tombstone of its stepped state
                results[anon] = dataclasses.replace(results[anon], state=tombstone, changed=True)
    return results
