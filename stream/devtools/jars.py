"""Jars from Maven Central, pinned by a lock list of coordinates and SHA-256 hashes.

A lock list (`kafka-<version>.lock` beside this module) has one jar a line,
`group:artifact:version sha256`; `#` starts a comment. `fetch_jars` downloads every
listed jar that is missing or does not verify into one directory, and nothing else.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import http.client
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from stream.errors import InfraError

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
_LINE = re.compile(r"([\w.-]+):([\w.-]+):([\w.-]+)\s+([0-9a-f]{64})")
_CHUNK = 1 << 16
_ATTEMPTS = 3  # a download that fails on the network is tried this often
_PARALLEL = 4

OpenUrl = Callable[[str], BinaryIO]  # an open HTTP response (or any byte stream) for a URL


@dataclass(frozen=True)
class Jar:
    """One pinned jar: its Maven coordinates and the SHA-256 of its bytes."""

    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        group = self.group.replace(".", "/")
        return f"{MAVEN_CENTRAL}/{group}/{self.artifact}/{self.version}/{self.filename}"

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"


def parse_lock(text: str, source: str = "lock list") -> list[Jar]:
    """The jars of a lock list; InfraError naming the line for anything malformed."""
    jars: list[Jar] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise InfraError(f"{source} line {number}: expected `group:artifact:version sha256`: {raw!r}")
        jars.append(Jar(*match.groups()))
    names = [jar.filename for jar in jars]
    if len(set(names)) != len(names):
        raise InfraError(f"{source} names one jar file twice")
    return jars


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def store(jar: Jar, stream: BinaryIO, libs: Path) -> Path:
    """Write `stream` to `libs/<jar file>` if its SHA-256 is the pinned one.

    The bytes go to a temporary name first and are renamed only once verified, so a
    crash never leaves a partial jar; a mismatch deletes them and raises InfraError.
    """
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=libs, prefix=f".{jar.filename}.", suffix=".part")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != jar.sha256:
            raise InfraError(
                f"{jar} ({jar.url}) has SHA-256 {digest.hexdigest()}, not the pinned {jar.sha256}"
            )
        os.replace(tmp, libs / jar.filename)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return libs / jar.filename


def fetch_jars(libs: Path, jars: Sequence[Jar], what: str, open_url: OpenUrl | None = None) -> None:
    """Make `libs` hold exactly `jars`, each verified; download those missing or damaged.

    The caller holds a lock on `libs` (this does not lock). `what` names the jars in the
    message on stderr; `open_url` replaces the HTTPS download (tests).
    """
    libs.mkdir(parents=True, exist_ok=True)
    _remove_unlisted(libs, {jar.filename for jar in jars})
    with concurrent.futures.ThreadPoolExecutor(_PARALLEL) as pool:
        intact = list(pool.map(lambda jar: _verified(libs, jar), jars))
        missing = [jar for jar, ok in zip(jars, intact, strict=True) if not ok]
        if not missing:
            return
        start = time.monotonic()
        print(
            f"touchstream: fetching {len(missing)} of {len(jars)} jars of {what} "
            f"from {MAVEN_CENTRAL} into {libs}",
            file=sys.stderr,
            flush=True,
        )
        opener = open_url or _https_opener()
        sizes = list(pool.map(lambda j: _download(j, libs, opener), missing))
    took = time.monotonic() - start
    print(f"touchstream: fetched {sum(sizes) / 1e6:.1f} MB in {took:.1f}s, all verified", file=sys.stderr)


def _verified(libs: Path, jar: Jar) -> bool:
    """Whether the cached jar is there and intact; a damaged one is deleted."""
    path = libs / jar.filename
    if not path.is_file():
        return False
    if sha256_of(path) == jar.sha256:
        return True
    print(f"touchstream: cached {path} fails its SHA-256 check; fetching it again", file=sys.stderr)
    path.unlink()
    return False


def _remove_unlisted(libs: Path, keep: Iterable[str]) -> None:
    """Stray files (an older lock's jars, a crashed run's temporary files) off the classpath."""
    keep = set(keep)
    for path in libs.iterdir():
        if path.name not in keep and path.is_file():
            path.unlink()


def _download(jar: Jar, libs: Path, open_url: OpenUrl) -> int:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with open_url(jar.url) as response:
                return store(jar, response, libs).stat().st_size
        except (OSError, http.client.HTTPException) as exc:  # also URLError, HTTPError, timeouts
            if attempt == _ATTEMPTS:
                raise InfraError(f"cannot fetch {jar} from {jar.url}: {exc}") from exc
            time.sleep(attempt)  # back off before the next try of a flaky network
    raise AssertionError("unreachable")


def _https_opener() -> OpenUrl:
    context = ssl.create_default_context()  # the system's CA bundle (or SSL_CERT_FILE)

    def open_url(url: str) -> BinaryIO:
        return urllib.request.urlopen(url, timeout=60, context=context)

    return open_url
