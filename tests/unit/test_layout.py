"""The code base keeps its shape: small modules and functions, one reader of the environment.

(The import boundary itself — the pure core imports no I/O library and no shell — is
checked by `make lint`: the import-linter contracts in pyproject.toml.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "stream"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# the settings loader, and the tools that start local services and child processes
READS_ENVIRONMENT = {PACKAGE / "settings.py", *(PACKAGE / "devtools").glob("*.py")}


def name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_no_module_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_no_function_over_60_lines(path: Path) -> None:
    tree = ast.parse(path.read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines that touch `os.environ`, `os.getenv` or `os.environb`."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "environb", "getenv", "putenv")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ] + [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "os"
        and any(a.name in ("environ", "getenv", "environb") for a in node.names)
    ]


@pytest.mark.parametrize("path", [p for p in MODULES if p not in READS_ENVIRONMENT], ids=name)
def test_only_the_settings_loader_and_devtools_read_the_environment(path: Path) -> None:
    assert environment_reads(ast.parse(path.read_text())) == []


def test_the_environment_check_sees_reads() -> None:
    assert environment_reads(ast.parse("import os\nx = os.environ['A']\ny = os.getenv('B')")) == [2, 3]
    assert environment_reads(ast.parse("from os import environ")) == [1]
