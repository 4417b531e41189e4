"""Attribution models: one registry of every model, by name (docs/architecture.md).

Each `Model` in `MODELS` is either

- *heuristic*: `shares(inp, params)` is a pure function of one conversion's
  `AttributionInput` and the `ModelParams`, returning one share per touch, in touch
  order, summing to 1 (`heuristic.py`); or
- *data-driven* (`needs_snapshot`): learned from aggregate path counts into a
  `Snapshot` (`snapshot.py`: `markov.py`, `shapley.py`); `weights(snapshot)` is the
  channel weight a touch's share is proportional to, and the weight the channel totals
  of `touchstream attribute --paths` are normalised by.

The CLI, the settings and the tests pick models by name through `MODELS`; `attribute`
runs a selection on one conversion. Adding a model is one function and one line below.
`MODELS` is read-only, so nothing registers a model at run time behind the settings' back.

No I/O anywhere in this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from stream.attribution import heuristic
from stream.attribution.paths import proportional_shares
from stream.attribution.shapley import clipped
from stream.attribution.snapshot import Snapshot
from stream.core.config import ModelParams
from stream.core.records import AttributionInput
from stream.errors import UnknownModelError

__all__ = ["DATA_DRIVEN", "HEURISTIC", "MODELS", "Model", "Shares", "attribute", "check_names"]

Shares = tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Model:
    """A registered model: `shares` for a heuristic one, `weights` for a data-driven one."""

    name: str
    shares: Callable[[AttributionInput, ModelParams], Shares] | None = None
    weights: Callable[[Snapshot], Mapping[str, float]] | None = None

    @property
    def needs_snapshot(self) -> bool:
        """Data-driven: its shares come from a snapshot learned from path counts."""
        return self.weights is not None


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
            Model("markov", weights=lambda snapshot: snapshot.removal_effects),
            Model("shapley", weights=lambda snapshot: clipped(snapshot.shapley_values)),
        )
    }
)
HEURISTIC: tuple[str, ...] = tuple(name for name, m in MODELS.items() if not m.needs_snapshot)
DATA_DRIVEN: tuple[str, ...] = tuple(name for name, m in MODELS.items() if m.needs_snapshot)


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
    `UnknownModelError` before running anything if a name is unknown."""
    shares: dict[str, Shares] = {}
    for name in check_names(names):
        model = MODELS[name]
        if model.shares is not None:
            shares[name] = model.shares(inp, params)
        elif snapshot is None:
            shares[name] = heuristic.linear(inp, params)
        else:
            assert model.weights is not None
            shares[name] = proportional_shares(inp, model.weights(snapshot))
    return shares
