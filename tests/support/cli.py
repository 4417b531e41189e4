"""The `touchstream` command as users run it, in a child process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from stream.devtools.runner import settings_env
from stream.settings import Settings


def touchstream(
    settings: Settings,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    text: bool = True,
    check: bool = False,
) -> subprocess.CompletedProcess[Any]:
    """`touchstream ARGS` under these settings (`env`: variables set on top), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=settings_env(settings) | dict(env or {}),
        capture_output=True,
        text=text,
        timeout=timeout,
        check=check,
    )
