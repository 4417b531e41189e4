"""The documentation stays true and stands alone.

The configuration reference names every setting; README.md and docs/*.md refer to
nothing outside the repository nor its history, their relative links (and anchors) resolve
to files and folders in it, and the README stays short.
"""

import re
from pathlib import Path

import pytest

from stream.settings import OTHER_VARIABLES, describe

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 230

# [text](target) and [text]: target; images too. The target ends at whitespace or ")".
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, …


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _links(text: str) -> list[str]:
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def test_docs_exist() -> None:
    names = {_name(p) for p in DOCS}
    expected = ["architecture", "guarantees", "performance", "configuration"]
    assert {"README.md", *(f"docs/{n}.md" for n in expected)} <= names


def test_configuration_reference_documents_every_setting() -> None:
    """The "Settings" table names exactly the settings; the other variables are documented too."""
    text = CONFIGURATION.read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip(" `") for line in section.splitlines() if line.startswith("| `TOUCHSTREAM_")
    }
    assert rows == {name for name, _default, _help in describe()}
    for name in OTHER_VARIABLES:
        assert f"`{name}`" in text


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_no_reference_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    for needle in ("../", "shared/", "DESIGN.md"):
        lines = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
        assert not lines, f"{_name(doc)} mentions {needle!r} on lines {lines}"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_no_reference_to_the_project_history(doc: Path) -> None:
    """No "issue N" and nothing that looks like a commit hash: the docs describe the code."""
    text = doc.read_text()
    assert not re.findall(r"\bissues? #?\d+", text, re.IGNORECASE)
    hashes = [
        w for w in re.findall(r"\b[0-9a-f]{7,40}\b", text) if re.search(r"\d", w) and re.search("[a-f]", w)
    ]
    assert not hashes, f"{_name(doc)} contains what looks like commit hashes: {hashes}"


def _anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", doc.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_relative_links_point_into_the_repository(doc: Path) -> None:
    broken = []
    for target in _links(doc.read_text()):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        missing = not resolved.is_relative_to(ROOT) or not resolved.exists()
        if missing or (anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved)):
            broken.append(target)
    assert not broken, f"{_name(doc)} links to what the repository does not hold: {broken}"


def test_links_are_found() -> None:
    """The link patterns above really see the README's links (else the check proves nothing)."""
    links = _links(README.read_text())
    assert "docs/configuration.md" in links and "deploy/README.md" in links


def test_readme_stays_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; keep it under {README_MAX_LINES}"
