"""The reliability suite prints its figures at the end of the run (pytest captures test output)."""

from __future__ import annotations

import pytest

FIGURES: list[str] = []


@pytest.fixture
def report():
    """Call `report("line")` to have the line printed in the run's summary."""
    return FIGURES.append


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
