"""Attribution models: one registry of every model, by name (docs/architecture.md).

Each `Model` in `MODELS` is either

- *heuristic*: `shares(inp, params)` is a pure function of one conversion's
  `AttributionInput` and the `ModelParams`, returning one share per touch, in touch
  order, summing to 1 (`heuristic.py`); or
- *data-driven* (`needs_snapshot`): learned from aggregate path counts into a
  `Snapshot` (`snapshot.py`: `markov.py`, `shapley.py`, `shapley_ordered.py`);
  `learned(inp, snapshot)` gives one conversion's shares from the snapshot, and
  `totals(stats, snapshot)` the channel totals of `touchstream attribute --paths`
  (each channel's `conversions` and `value`, and what else the model tells per channel).

The CLI, the settings and the tests pick models by name through `MODELS`; `attribute`
runs a selection on one conversion. Adding a model is one function and one line below.
`MODELS` is read-only, so nothing registers a model at run time behind the settings' back.

No I/O anywhere in this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from stream.attribution import heuristic, markov, shapley, shapley_ordered
from stream.attribution.paths import PathStats
from stream.attribution.snapshot import MODEL_NAMES, Snapshot
from stream.core.config import ModelParams
from stream.core.records import AttributionInput
from stream.errors import UnknownModelError

__all__ = [
    "DATA_DRIVEN",
    "HEURISTIC",
    "MODELS",
    "ChannelTotals",
    "Model",
    "Shares",
    "attribute",
    "check_names",
]

Shares = tuple[float, ...]
ChannelTotals = dict[str, dict[str, Any]]  # channel -> {"conversions", "value", model-specific keys}


@dataclass(frozen=True, slots=True)
class Model:
    """A registered model: `shares` for a heuristic one; `learned` and `totals` for a
    data-driven one."""

    name: str
    shares: Callable[[AttributionInput, ModelParams], Shares] | None = None
    learned: Callable[[AttributionInput, Snapshot], Shares] | None = None
    totals: Callable[[PathStats, Snapshot], ChannelTotals] | None = None

    @property
    def needs_snapshot(self) -> bool:
        """Data-driven: its shares come from a snapshot learned from path counts."""
        return self.learned is not None


def _part(snapshot: Snapshot, name: str) -> Any:
    """The snapshot's part for model `name`; ValueError when the snapshot does not hold it."""
    part = getattr(snapshot, name)
    if part is None:
        held = ", ".join(snapshot.models) or "none"
        raise ValueError(f"no {name!r} value in the snapshot {snapshot.snapshot_id} (it has: {held})")
    return part


def _markov(inp: AttributionInput, snapshot: Snapshot) -> Shares:
    return markov.markov_shares(inp, _part(snapshot, "markov").conversions)


def _shapley(inp: AttributionInput, snapshot: Snapshot) -> Shares:
    return shapley.shapley_shares(inp, _part(snapshot, "shapley").conversions)


def _shapley_ordered(inp: AttributionInput, snapshot: Snapshot) -> Shares:
    return shapley_ordered.ordered_shares(inp, _part(snapshot, "shapley_ordered").conversions)


MODELS: Mapping[str, Model] = MappingProxyType(
    {
        m.name: m
        for m in (
            Model("first_touch", heuristic.first_touch),
            Model("last_touch", heuristic.last_touch),
            Model("last_non_direct", heuristic.last_non_direct),
            Model("linear", heuristic.linear),
            Model("position_based", heuristic.position_based),
            Model("time_decay", heuristic.time_decay),
            Model("j_shaped", heuristic.j_shaped),
            Model("inverse_j", heuristic.inverse_j),
            Model("w_shaped", heuristic.w_shaped),
            Model("full_path", heuristic.full_path),
            Model(
                "markov",
                learned=_markov,
                totals=lambda stats, snap: markov.channel_totals(stats, _part(snap, "markov")),
            ),
            Model(
                "shapley",
                learned=_shapley,
                totals=lambda stats, snap: shapley.channel_totals(_part(snap, "shapley")),
            ),
            Model(
                "shapley_ordered",
                learned=_shapley_ordered,
                totals=lambda stats, snap: shapley_ordered.channel_totals(_part(snap, "shapley_ordered")),
            ),
        )
    }
)
HEURISTIC: tuple[str, ...] = tuple(name for name, m in MODELS.items() if not m.needs_snapshot)
DATA_DRIVEN: tuple[str, ...] = tuple(name for name, m in MODELS.items() if m.needs_snapshot)
assert DATA_DRIVEN == MODEL_NAMES, "the snapshot holds every data-driven model, in registry order"


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names, unchanged; `UnknownModelError` for the first one that is not registered."""
    selected = tuple(names)
    for name in selected:
        if name not in MODELS:
            raise UnknownModelError(name, tuple(MODELS))
    return selected


def attribute(
    inp: AttributionInput,
    params: ModelParams,
    names: Iterable[str] = tuple(MODELS),
    snapshot: Snapshot | None = None,
) -> dict[str, Shares]:
    """The shares of every named model for one conversion, keyed by model name.

    Data-driven models take theirs from `snapshot` (linear while there is none). Raises
    `UnknownModelError` before running anything if a name is unknown, and ValueError for
    a data-driven model the snapshot does not hold (`Snapshot.missing`)."""
    shares: dict[str, Shares] = {}
    for name in check_names(names):
        model = MODELS[name]
        if model.shares is not None:
            shares[name] = model.shares(inp, params)
        elif snapshot is None:
            shares[name] = heuristic.linear(inp, params)
        else:
            assert model.learned is not None
            shares[name] = model.learned(inp, snapshot)
    return shares
