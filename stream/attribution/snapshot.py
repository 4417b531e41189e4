"""Data-driven model snapshots: what `markov`, `shapley` and `shapley_ordered` learned
from path counts.

Pure. A `Snapshot` is built from aggregate path counts (`paths.PathStats`); its id is a
digest of those counts, the model parameters and `DEFINITIONS`, so every worker that
reads the same counts builds the same snapshot with the same id (and a release that
changes what a model computes gives the same counts a new id). Each conversion names
the snapshot its data-driven shares come from; before the first snapshot exists the
shares are linear and `model_snapshot` is null.

One format: `Snapshot.published()` is the list of `attribution.models` values, one per
data-driven model (`stream/schemas/model.schema.json`); the worker produces them, stores
them in Redis as its current snapshot, and serves them on `POST /models/refresh`;
`from_published` reads them back. A snapshot read back may hold only some of the models
(`Snapshot.models`), when only some values were given; `missing` names the others.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from stream.attribution import markov, shapley, shapley_ordered
from stream.attribution.markov import Effects
from stream.attribution.paths import PathStats, format_path, seen
from stream.attribution.shapley import ShapleyValues
from stream.attribution.shapley_ordered import OrderedValues
from stream.core.versions import SCHEMA_VERSION

__all__ = ["DEFINITIONS", "MODEL_NAMES", "Snapshot", "build", "from_published", "snapshot_id"]

MODEL_NAMES = ("markov", "shapley", "shapley_ordered")  # the data-driven models, registry order
DEFINITIONS = 2  # 2: Zhao et al.'s simplified Shapley, ordered Shapley, markov value effects


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One snapshot: its id, the counts it learned from (`paths` distinct seen paths, their
    `conversions` and `nulls`) and each model's part, None for a model it does not hold
    (only in a snapshot read back from some of its values)."""

    snapshot_id: str
    paths: int
    conversions: float
    nulls: float
    markov: Effects | None = None
    shapley: ShapleyValues | None = None
    shapley_ordered: OrderedValues | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The data-driven models this snapshot holds, in `MODEL_NAMES` order."""
        return tuple(name for name in MODEL_NAMES if getattr(self, name) is not None)

    def missing(self, names: Iterable[str]) -> tuple[str, ...]:
        """The data-driven models among `names` that this snapshot does not hold."""
        return tuple(name for name in names if name in MODEL_NAMES and name not in self.models)

    def published(self) -> list[dict[str, Any]]:
        """The `attribution.models` values, one per model held, in `MODEL_NAMES` order."""
        common = {
            "schema_version": SCHEMA_VERSION,
            "snapshot_id": self.snapshot_id,
            "paths": self.paths,
            "conversions": self.conversions,
            "nulls": self.nulls,
        }
        return [{**common, "model": name, **_WRITE[name](getattr(self, name))} for name in self.models]


def _write_markov(part: Effects) -> dict[str, Any]:
    return {"order": part.order, "removal_effects": part.conversions, "value_removal_effects": part.value}


def _write_shapley(part: ShapleyValues) -> dict[str, Any]:
    return {"values": part.conversions, "value_values": part.value}


def _write_ordered(part: OrderedValues) -> dict[str, Any]:
    return {
        "positions": {ch: list(phi) for ch, phi in part.conversions.items()},
        "value_positions": {ch: list(phi) for ch, phi in part.value.items()},
    }


_WRITE: dict[str, Callable[[Any], dict[str, Any]]] = {
    "markov": _write_markov,
    "shapley": _write_shapley,
    "shapley_ordered": _write_ordered,
}


def from_published(values: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> Snapshot:
    """The snapshot of some `attribution.models` values (of one snapshot; a single value
    may be given as is). Keeps the models it is given (`Snapshot.models`).

    Raises ValueError with a one-line message: "not an attribution.models value: …",
    "values of two snapshots: <id1>, <id2>", "two 'markov' values", "no
    attribution.models value"."""
    parts: dict[str, Mapping[str, Any]] = {}
    for value in [values] if isinstance(values, Mapping) else values:
        name = _model_of(value)
        if name in parts:
            raise ValueError(f"two {name!r} values of snapshot {value['snapshot_id']}")
        parts[name] = value
    if not parts:
        raise ValueError("no attribution.models value")
    ids = list(dict.fromkeys(value["snapshot_id"] for value in parts.values()))
    if len(ids) > 1:
        raise ValueError(f"values of two snapshots: {ids[0]}, {ids[1]}")
    read = {name: _read(name, _READ[name], value) for name, value in parts.items()}
    first = next(iter(parts.values()))
    common = _read(
        str(first["model"]),
        lambda v: (int(v["paths"]), _number(v["conversions"]), _number(v["nulls"])),
        first,
    )
    return Snapshot(ids[0], *common, **read)


def _read(name: str, read: Callable[[Mapping[str, Any]], Any], value: Mapping[str, Any]) -> Any:
    """`read(value)`, its failures as one ValueError naming the model and the field."""
    try:
        return read(value)
    except KeyError as exc:
        raise ValueError(f"not an attribution.models value: {name} field {exc} missing") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not an attribution.models value: {name}: {exc}") from None


def _model_of(value: Any) -> str:
    """The model a value describes; ValueError when it is not an `attribution.models` value."""
    if (
        not isinstance(value, Mapping)
        or value.get("model") not in MODEL_NAMES
        or value.get("schema_version") != SCHEMA_VERSION
        or not isinstance(value.get("snapshot_id"), str)
    ):
        text = orjson.dumps(value, default=repr).decode()
        raise ValueError(f"not an attribution.models value: {text[:80]}{'…' if len(text) > 80 else ''}")
    return str(value["model"])


def _number(x: Any) -> float:
    """A finite number >= 0, as a float (ValueError otherwise; bools are not numbers)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not (math.isfinite(x) and x >= 0):
        raise ValueError(f"expected a number >= 0, got {x!r}")
    return float(x)


def _numbers(doc: Mapping[str, Any]) -> dict[str, float]:
    return {str(ch): _number(x) for ch, x in sorted(doc.items())}


def _lists(doc: Mapping[str, Any]) -> dict[str, tuple[float, ...]]:
    return {str(ch): tuple(_number(x) for x in xs) for ch, xs in sorted(doc.items())}


def _effects(doc: Mapping[str, Any]) -> dict[str, float]:
    """Removal effects: numbers in [0, 1]."""
    effects = _numbers(doc)
    if any(x > 1 for x in effects.values()):
        raise ValueError(f"a removal effect above 1 in {dict(doc)!r}")
    return effects


def _order(x: Any) -> int:
    """A Markov order: a whole number >= 1."""
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise ValueError(f"expected a markov order (a whole number >= 1), got {x!r}")
    return x


_READ: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "markov": lambda v: Effects(
        _order(v["order"]), _effects(v["removal_effects"]), _effects(v["value_removal_effects"])
    ),
    "shapley": lambda v: ShapleyValues(_numbers(v["values"]), _numbers(v["value_values"])),
    "shapley_ordered": lambda v: OrderedValues(_lists(v["positions"]), _lists(v["value_positions"])),
}


def snapshot_id(stats: PathStats, markov_order: int) -> str:
    """Digest of the seen path counts, the model parameters and `DEFINITIONS`."""
    rows = sorted((format_path(p), c.conversions, c.value, c.nulls) for p, c in seen(stats).items())
    return hashlib.sha256(orjson.dumps([DEFINITIONS, markov_order, rows])).hexdigest()[:16]


def build(stats: PathStats, markov_order: int = 1) -> Snapshot:
    """Every data-driven model learned from the seen paths of `stats`."""
    kept = seen(stats)
    return Snapshot(
        snapshot_id=snapshot_id(kept, markov_order),
        paths=len(kept),
        conversions=float(sum(c.conversions for c in kept.values())),
        nulls=float(sum(c.nulls for c in kept.values())),
        markov=markov.effects(kept, markov_order),
        shapley=shapley.shapley_values(kept),
        shapley_ordered=shapley_ordered.ordered_values(kept),
    )
