"""The README stays true: its configuration table names every setting."""

from pathlib import Path

from stream.settings import describe

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_documents_every_setting() -> None:
    rows = {
        line.split("|")[1].strip(" `")
        for line in README.read_text().splitlines()
        if line.startswith("| `TOUCHSTREAM_")
    }
    assert rows == {name for name, _default, _help in describe()}
