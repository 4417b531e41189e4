"""The batch oracle of the integration tests: `touchstream attribute` run as users run it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from stream.runner import settings_env
from stream.settings import Settings


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def attribute_cli(settings: Settings, *args: str) -> bytes:
    """stdout of `touchstream attribute ARGS` under these settings (fails on a non-zero exit)."""
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", "attribute", *args],
        env=settings_env(settings),
        capture_output=True,
        check=True,
        timeout=300,
    ).stdout


def oracle_lines(settings: Settings, events: Iterable[dict[str, Any]], directory: Path) -> list[bytes]:
    """The attribution values `attribute --events` prints for `events`, in its order."""
    path = write_jsonl(directory / "oracle-events.jsonl", events)
    return attribute_cli(settings, "--events", str(path)).splitlines()
