"""Data-driven model snapshots: what `markov` and `shapley` learned from path counts.

Pure. A `Snapshot` is built from aggregate path counts (`paths.PathStats`);
its id is a digest of those counts and the model parameters, so every worker
that reads the same counts builds the same snapshot with the same id. Each
conversion names the snapshot its data-driven shares come from; before the
first snapshot exists the shares are linear and `model_snapshot` is null.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from stream.attribution import markov, shapley
from stream.attribution.paths import PathStats, format_path, seen


@dataclass(frozen=True, slots=True)
class Snapshot:
    snapshot_id: str
    markov_order: int
    removal_effects: dict[str, float]
    shapley_values: dict[str, float]
    shapley_exact: bool
    shapley_error_bound: float | None
    paths: int
    conversions: float
    nulls: float

    def doc(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "markov": {"order": self.markov_order, "removal_effects": self.removal_effects},
            "shapley": {
                "values": self.shapley_values,
                "exact": self.shapley_exact,
                "error_bound": self.shapley_error_bound,
            },
            "paths": self.paths,
            "conversions": self.conversions,
            "nulls": self.nulls,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Snapshot:
        return cls(
            doc["snapshot_id"],
            doc["markov"]["order"],
            doc["markov"]["removal_effects"],
            doc["shapley"]["values"],
            doc["shapley"]["exact"],
            doc["shapley"]["error_bound"],
            doc["paths"],
            doc["conversions"],
            doc["nulls"],
        )


def snapshot_id(stats: PathStats, markov_order: int) -> str:
    """Digest of the seen path counts and the model parameters."""
    rows = sorted((format_path(p), c.conversions, c.value, c.nulls) for p, c in seen(stats).items())
    return hashlib.sha256(orjson.dumps([markov_order, rows])).hexdigest()[:16]


def build(stats: PathStats, markov_order: int = 1) -> Snapshot:
    kept = seen(stats)
    values = shapley.shapley_values(kept)
    return Snapshot(
        snapshot_id=snapshot_id(kept, markov_order),
        markov_order=markov_order,
        removal_effects=_floats(markov.removal_effects(kept, markov_order)),
        shapley_values=_floats(values.values),
        shapley_exact=values.exact,
        shapley_error_bound=None if values.error_bound is None else float(values.error_bound),
        paths=len(kept),
        conversions=float(sum(c.conversions for c in kept.values())),
        nulls=float(sum(c.nulls for c in kept.values())),
    )


def _floats(values: dict[str, Any]) -> dict[str, float]:
    """Plain Python floats (numpy scalars are not JSON), in channel order."""
    return {channel: float(v) for channel, v in sorted(values.items())}
