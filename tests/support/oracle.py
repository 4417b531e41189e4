"""The batch oracle of the integration tests: `touchstream attribute` run as users run it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from stream.settings import Settings
from tests.support.cli import touchstream


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def attribute_cli(settings: Settings, *args: str) -> bytes:
    """stdout of `touchstream attribute ARGS` under these settings (fails on a non-zero exit)."""
    return touchstream(settings, "attribute", *args, timeout=300, text=False, check=True).stdout


def oracle_lines(settings: Settings, events: Iterable[dict[str, Any]], directory: Path) -> list[bytes]:
    """The attribution values `attribute --events` prints for `events`, in its order."""
    path = write_jsonl(directory / "oracle-events.jsonl", events)
    return attribute_cli(settings, "--events", str(path)).splitlines()
