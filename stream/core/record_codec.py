"""A stored conversion record as bytes (`ts:{p:ID}:conv:<conversion_id>`): compact.

Pure. Late revenue (`revenue.py`) and revisions need a conversion's attribution value for
as long as revenue may still arrive (730 days by default), so the record is the largest
thing a deployment keeps in Redis. It holds exactly what the value holds, without what
can be derived again byte for byte:

- each model's `values` (share × conversion value: the same multiplication again);
- each touchpoint's `index` (its position) and the field names (a fixed column order);
- the touchpoints' times, as offsets from the conversion's time (short integers);
- the shares of a heuristic model, when its shares computed again from the record's
  touchpoints and `Basis` (the lead and opportunity times and the model parameters the
  conversion was attributed with) are the very floats emitted — checked when the record
  is written. Heuristic models are pure functions of those, and their definitions are
  frozen (a changed definition is a new model name; `tests/unit/test_models.py` pins
  them), so a record written today decodes to the same shares in two years.

The rest is one JSON header line, then the remaining models' shares (the data-driven
ones) as little-endian float64 (exact), in one Zstandard frame with the marketing
dictionary (`packing`). A 10-touch conversion takes under 1 KiB in Redis (`MEMORY
USAGE`, bench/suite.py). Records written by earlier versions as the plain JSON value
still decode. A heuristic model no longer registered cannot be computed again: it is
left out of a decoded record. Bytes that are no record raise `RecordError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import orjson

from stream.attribution import MODELS
from stream.core.config import ModelParams
from stream.core.packing import pack_dense, unpack
from stream.core.records import AttributionInput, Touchpoint

# the touchpoint fields in `output.touch_doc` order, `index` and `ts` apart
TOUCH_FIELDS = (
    "session_id",
    "channel",
    "source",
    "medium",
    "campaign",
    "term",
    "content",
    "interaction",
    "medium_kind",
    "directness",
    "stage",
    "context",
    "cost",
)
CONVERSION_FIELDS = ("event_id", "conversion", "conversion_id", "ts", "value", "currency")
FORMAT = 1  # the record layout below; a record of another format is refused (`RecordError`)
_HEADER = (
    "schema_version",
    "kind",
    "attribution_id",
    "revision",
    "person_id",
    "model_snapshot",
    "unattributed",
)


class RecordError(ValueError):
    """A stored record that cannot be read: corrupt, or of a format this version does not know."""


@dataclass(frozen=True, slots=True)
class Basis:
    """What a conversion's heuristic shares were computed from, besides its touchpoints."""

    params: ModelParams
    lead_ts: int | None = None
    opportunity_ts: int | None = None


def encode_record(doc: dict[str, Any], basis: Basis | None = None) -> bytes:
    """An `attribution.conversions` value (kind `conversion`) as a compact stored record;
    without `basis`, every model's shares are kept."""
    conversion = doc["conversion"]
    at = conversion["ts"]
    touches = [[t["ts"] - at, *(t[f] for f in TOUCH_FIELDS)] for t in doc["touchpoints"]]
    models = list(doc["models"])
    derived = _derived(doc, basis) if basis is not None else {}
    kept = [name for name in models if name not in derived]
    header = [
        FORMAT,
        *(doc[f] for f in _HEADER),
        [conversion[f] for f in CONVERSION_FIELDS],
        touches,
        models,
        kept,
        None if basis is None else [*basis.params.position_weights, basis.params.half_life_ms],
        None if basis is None else [basis.lead_ts, basis.opportunity_ts],
    ]
    shares = [s for name in kept for s in doc["models"][name]["shares"]]
    return pack_dense(orjson.dumps(header) + b"\n" + struct.pack(f"<{len(shares)}d", *shares))


def decode_record(raw: bytes) -> tuple[dict[str, Any], Basis | None]:
    """The value `encode_record` stored, equal to the one encoded, and its basis; a plain
    JSON value (written by an earlier version) as it is, with no basis. `RecordError` for
    bytes that are neither."""
    try:
        if raw[:1] == b"{":
            return orjson.loads(raw), None
        line, _, packed = unpack(raw).partition(b"\n")
        version, *header = orjson.loads(line)
        if version != FORMAT:
            raise RecordError(f"a stored conversion record of format {version!r}, not {FORMAT}")
        return _decoded(header, packed)
    except RecordError:
        raise
    except Exception as exc:  # zstd, zlib, JSON, struct or shape errors: the bytes are not a record
        raise RecordError(f"an unreadable stored conversion record ({type(exc).__name__}: {exc})") from None


def _decoded(header: list[Any], packed: bytes) -> tuple[dict[str, Any], Basis | None]:
    *fields, conversion_row, touch_rows, models, kept, params, times = header
    doc = dict(zip(_HEADER, fields, strict=True))
    conversion = dict(zip(CONVERSION_FIELDS, conversion_row, strict=True))
    at, value = conversion["ts"], conversion["value"]
    doc["conversion"] = conversion
    doc["touchpoints"] = [
        {"index": i, "ts": at + row[0], **dict(zip(TOUCH_FIELDS, row[1:], strict=True))}
        for i, row in enumerate(touch_rows)
    ]
    basis = None if params is None else Basis(ModelParams(tuple(params[:3]), params[3]), *times)
    n = len(touch_rows)
    floats = struct.unpack(f"<{len(packed) // 8}d", packed)
    shares = {name: floats[k * n : (k + 1) * n] for k, name in enumerate(kept)}
    if basis is not None:
        inp = attribution_input(doc, basis)
        for name in models:
            model = MODELS.get(name)
            if name not in shares and model is not None and model.shares is not None:
                shares[name] = model.shares(inp, basis.params) if n else ()
    doc["models"] = {
        name: {"shares": list(shares[name]), "values": [share * value for share in shares[name]]}
        for name in models
        if name in shares
    }
    return doc, basis


def attribution_input(doc: dict[str, Any], basis: Basis) -> AttributionInput:
    """The input the conversion's models saw, from its value's touchpoints and its basis."""
    touches = tuple(Touchpoint(ts=t["ts"], **{f: t[f] for f in TOUCH_FIELDS}) for t in doc["touchpoints"])
    return AttributionInput(touches, doc["conversion"]["ts"], basis.lead_ts, basis.opportunity_ts)


def _derived(doc: dict[str, Any], basis: Basis) -> set[str]:
    """The heuristic models whose shares the record's touchpoints and basis give again."""
    if doc["unattributed"]:
        return {name for name in doc["models"] if _heuristic(name)}
    inp = attribution_input(doc, basis)
    return {
        name
        for name, credit in doc["models"].items()
        if _heuristic(name) and list(MODELS[name].shares(inp, basis.params)) == credit["shares"]  # type: ignore[misc]
    }


def _heuristic(name: str) -> bool:
    model = MODELS.get(name)
    return model is not None and model.shares is not None
