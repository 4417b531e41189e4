"""Attribution models: pure functions registered by name (DESIGN.md §7).

A model is any `Model`: a pure function taking one conversion's
`AttributionInput` and the `ModelParams` and returning one share per touch,
in touch order, summing to 1. `MODELS` maps each model's name to its
function; the CLI, the settings and the tests pick models by name through
it, and `attribute` runs a selection of them on one conversion.

Adding a model is one function (e.g. in `heuristic.py`) and one line in the
`MODELS` dict below. `MODELS` is a read-only view, so nothing can register a
model at run time behind the settings' back.

No I/O anywhere in this package: the agents and the CLI load journeys,
call `attribute`, and store or print the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from stream.attribution import heuristic
from stream.records import AttributionInput, ModelParams

__all__ = [
    "DATA_DRIVEN_MODELS",
    "DEFAULT_MODELS",
    "MODELS",
    "Model",
    "UnknownModelError",
    "attribute",
]

Model = Callable[[AttributionInput, ModelParams], tuple[float, ...]]

MODELS: Mapping[str, Model] = MappingProxyType(
    {
        "first_touch": heuristic.first_touch,
        "last_touch": heuristic.last_touch,
        "last_non_direct": heuristic.last_non_direct,
        "linear": heuristic.linear,
        "position_based": heuristic.position_based,
        "time_decay": heuristic.time_decay,
        "j_shaped": heuristic.j_shaped,
        "inverse_j": heuristic.inverse_j,
        "w_shaped": heuristic.w_shaped,
        "full_path": heuristic.full_path,
    }
)

DEFAULT_MODELS: tuple[str, ...] = tuple(MODELS)

# Learned from aggregate path counts (markov.py, shapley.py), not per-conversion functions:
# `touchstream attribute --paths` computes their channel totals.
DATA_DRIVEN_MODELS: tuple[str, ...] = ("markov", "shapley")


class UnknownModelError(KeyError):
    """A model name that is not in `MODELS`."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown attribution model {self.name!r}; known models: {', '.join(MODELS)}"


def attribute(
    inp: AttributionInput,
    params: ModelParams,
    names: Iterable[str] = DEFAULT_MODELS,
) -> dict[str, tuple[float, ...]]:
    """The shares of every named model for one conversion, keyed by model name.

    Raises `UnknownModelError` before running anything if a name is unknown.
    """
    selected = tuple(names)
    for name in selected:
        if name not in MODELS:
            raise UnknownModelError(name)
    return {name: MODELS[name](inp, params) for name in selected}
