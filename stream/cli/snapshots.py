"""Model snapshot files of `touchstream attribute`: `--snapshot` reads one, `--model-out`
writes one, in the one format of `attribution.models` (stream/schemas/model.schema.json).

A file is JSON lines, one `attribution.models` value per line, as `--model-out` writes
them and `touchstream tail attribution.models --until-end` prints them; one JSON object
(a single value) or a JSON array of values are read too. When a model has several values
(`attribution.models` is compacted, but a topic read from its beginning may still hold
earlier snapshots, in other schema versions too), the last one counts and only it is read.
Errors are one line naming the file and, in JSON lines, the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from stream.attribution import snapshot as snapshots
from stream.attribution.snapshot import Snapshot
from stream.core.output import dumps
from stream.errors import CliError


def published_lines(snapshot: Snapshot) -> bytes:
    """The snapshot as JSON lines: each `attribution.models` value, byte for byte as the
    worker publishes it."""
    return b"".join(dumps(value) + b"\n" for value in snapshot.published())


def json_values(name: str, data: bytes) -> list[tuple[str, Any]]:
    """The JSON values of a snapshot file, each with where it is (`NAME:LINE` in JSON lines,
    `NAME: item N` in an array, `NAME` for one object)."""
    try:
        found = _json_lines(name, data)
    except CliError as line_error:  # perhaps one JSON document over several lines
        try:
            found = [(name, orjson.loads(data))]
        except orjson.JSONDecodeError:
            raise line_error from None
    if len(found) == 1 and isinstance(found[0][1], list):
        return [(f"{name}: item {i}", value) for i, value in enumerate(found[0][1], start=1)]
    return found


def _json_lines(name: str, data: bytes) -> list[tuple[str, Any]]:
    found = []
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            try:
                found.append((f"{name}:{number}", orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                raise CliError(f"{name}:{number}: not JSON ({exc})") from None
    return found


def read_snapshot(name: str, data: bytes) -> Snapshot:
    """The snapshot of a file's last value of each model, each checked on its own first (the
    error names its line)."""
    latest: dict[Any, tuple[str, Mapping[str, Any]]] = {}
    for where, value in json_values(name, data):
        if not isinstance(value, Mapping):
            raise CliError(f"{where}: not an attribution.models value: not a JSON object")
        latest[value.get("model")] = (where, value)
    for where, value in latest.values():
        try:
            snapshots.from_published(value)
        except ValueError as exc:
            raise CliError(f"{where}: {exc}") from None
    try:
        return snapshots.from_published([value for _where, value in latest.values()])
    except ValueError as exc:
        raise CliError(f"{name}: {exc}") from None


def check_holds(name: str, snapshot: Snapshot, selected: Iterable[str]) -> None:
    """A `CliError` naming the selected data-driven models the snapshot does not hold, and how
    to select others."""
    selected = tuple(selected)
    missing = snapshot.missing(selected)
    if missing:
        held = ", ".join(snapshot.models)
        others = ",".join(m for m in selected if m not in missing)
        raise CliError(
            f"{name}: the snapshot has no {' or '.join(missing)} value (it holds {held}); "
            f"select the models with --models or TOUCHSTREAM_MODELS"
            + (f", e.g. --models {others}" if others else "")
        )
