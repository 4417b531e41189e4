"""The local services' pinned Kafka jars: the lock list parses and a jar is stored only when it verifies.

Pure: no network (the download is a function given to `fetch_jars`), no subprocess.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import pytest

from stream.devtools.jars import Jar, fetch_jars, parse_lock, store
from stream.devtools.kafka import KAFKA_VERSION
from stream.devtools.tools import java_major
from stream.errors import InfraError

GOOD = b"PK\x03\x04 a jar's bytes"
SHA = hashlib.sha256(GOOD).hexdigest()
JAR = Jar("org.example.tools", "widget_2.13", "1.2.3", SHA)


def test_parse_lock_reads_coordinates_and_hashes_and_skips_comments() -> None:
    text = (
        f"# header\n\norg.example.tools:widget_2.13:1.2.3 {SHA}  # why pinned\n"
        f"ch.qos:r4j:1.2.25-4 {'0' * 64}\n"
    )
    first, second = parse_lock(text)
    assert first == JAR
    assert (second.group, second.artifact, second.version) == ("ch.qos", "r4j", "1.2.25-4")
    assert first.filename == "widget_2.13-1.2.3.jar"
    assert first.url == (
        "https://repo1.maven.org/maven2/org/example/tools/widget_2.13/1.2.3/widget_2.13-1.2.3.jar"
    )


@pytest.mark.parametrize(
    "line",
    [
        f"org.example:widget {SHA}",  # no version
        "org.example:widget:1.0",  # no hash
        f"org.example:widget:1.0 {SHA[:-1]}",  # short hash
        f"org.example:widget:1.0 {SHA.upper()}",  # not lower-case hex
        f"org.example:widget:1.0:extra {SHA}",
    ],
)
def test_parse_lock_names_the_malformed_line(line: str) -> None:
    with pytest.raises(InfraError, match=r"x\.lock line 2"):
        parse_lock(f"# ok\n{line}\n", "x.lock")


def test_parse_lock_refuses_a_jar_listed_twice() -> None:
    with pytest.raises(InfraError, match="twice"):
        parse_lock(f"a:b:1 {SHA}\na:b:1 {'1' * 64}\n")


def test_the_shipped_kafka_lock_list_parses() -> None:
    lock = resources.files("stream.devtools").joinpath(f"kafka-{KAFKA_VERSION}.lock")
    jars = parse_lock(lock.read_text(), lock.name)
    coordinates = {str(jar) for jar in jars}
    assert len(jars) == 57
    assert {
        f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
        f"org.apache.kafka:kafka-clients:{KAFKA_VERSION}",
        "org.slf4j:slf4j-reload4j:1.7.36",
        "ch.qos.reload4j:reload4j:1.2.25",
    } <= coordinates


def test_store_keeps_a_jar_that_verifies(tmp_path: Path) -> None:
    path = store(JAR, io.BytesIO(GOOD), tmp_path)
    assert path == tmp_path / JAR.filename
    assert path.read_bytes() == GOOD
    assert [p.name for p in tmp_path.iterdir()] == [JAR.filename]  # no temporary file left


def test_store_refuses_a_tampered_jar_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match=r"org\.example\.tools:widget_2\.13:1\.2\.3 .*SHA-256"):
        store(JAR, io.BytesIO(GOOD + b"!"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def _serving(body: bytes, asked: list[str]) -> Callable[[str], BinaryIO]:
    def open_url(url: str) -> BinaryIO:
        asked.append(url)
        return io.BytesIO(body)

    return open_url


def test_fetch_jars_downloads_a_missing_jar_then_trusts_the_cache(tmp_path: Path) -> None:
    asked: list[str] = []
    fetch_jars(tmp_path, [JAR], "widgets", _serving(GOOD, asked))
    fetch_jars(tmp_path, [JAR], "widgets", _serving(b"never read", asked))
    assert asked == [JAR.url]
    assert (tmp_path / JAR.filename).read_bytes() == GOOD


def test_fetch_jars_replaces_a_tampered_cached_jar_and_drops_stray_files(tmp_path: Path) -> None:
    (tmp_path / JAR.filename).write_bytes(b"tampered")
    (tmp_path / "old-1.0.jar").write_bytes(b"an older lock's jar")
    (tmp_path / f".{JAR.filename}.x.part").write_bytes(b"half a download")
    asked: list[str] = []
    fetch_jars(tmp_path, [JAR], "widgets", _serving(GOOD, asked))
    assert asked == [JAR.url]
    assert [p.name for p in tmp_path.iterdir()] == [JAR.filename]
    assert (tmp_path / JAR.filename).read_bytes() == GOOD


def test_fetch_jars_fails_naming_the_jar_when_the_download_is_tampered(tmp_path: Path) -> None:
    (tmp_path / JAR.filename).write_bytes(b"tampered")
    with pytest.raises(InfraError, match=r"widget_2\.13:1\.2\.3"):
        fetch_jars(tmp_path, [JAR], "widgets", _serving(b"tampered too", []))
    assert list(tmp_path.iterdir()) == []  # the bad cached file and the bad download are both gone


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('Picked up JAVA_TOOL_OPTIONS: -Xss1m\nopenjdk version "25.0.2" 2026-01-20 LTS', 25),
        ('java version "1.8.0_402"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("command not found", None),
    ],
)
def test_java_major_reads_java_version_output(output: str, major: int | None) -> None:
    assert java_major(output) == major
