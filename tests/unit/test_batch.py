"""Batch mode over aggregated path files: exact channel totals and clear errors."""

import io

import pytest

from stream.batch import InputError, attribute_events, heuristic_totals, read_paths
from stream.events import Limits
from stream.person import Config
from stream.records import ModelParams

CSV = """path,total_conversions,total_conversion_value,total_null
email > direct,10,1000,5
paid_search,4,100,20
email > paid_search > direct,0,0,7
"""


def totals(models: tuple[str, ...]) -> dict:
    return heuristic_totals(read_paths(io.StringIO(CSV)), models, ModelParams())


def test_heuristic_totals_treat_each_row_as_its_conversions() -> None:
    """linear: email>direct splits 10 conversions / 1000 value in halves; paid_search keeps its 4 / 100;
    the null-only row credits nothing. last_non_direct gives email>direct entirely to email."""
    got = totals(("linear", "last_non_direct"))
    assert got["linear"] == {
        "email": {"conversions": 5.0, "value": 500.0},
        "direct": {"conversions": 5.0, "value": 500.0},
        "paid_search": {"conversions": 4.0, "value": 100.0},
    }
    assert got["last_non_direct"]["email"] == {"conversions": 10.0, "value": 1000.0}
    assert got["last_non_direct"]["direct"] == {"conversions": 0.0, "value": 0.0}


def test_totals_conserve_conversions_and_value() -> None:
    for channels in totals(("first_touch", "position_based", "time_decay", "w_shaped")).values():
        assert sum(c["conversions"] for c in channels.values()) == pytest.approx(14.0)
        assert sum(c["value"] for c in channels.values()) == pytest.approx(1100.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a > b,1,2\n", "line 1: expected 4 columns"),
        ("path,c,v,n\na > ,1,2,3\n", "line 2: empty channel"),
        ("a,1,x,3\n", "line 1: counts must be numbers"),
        ("a,1,2,3\nb,-1,0,0\n", "line 2: counts must not be negative"),
    ],
)
def test_bad_rows_name_their_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(read_paths(io.StringIO(text)))


def test_attribute_events_skips_invalid_lines_and_records_them() -> None:
    lines = [
        b'{"event_id": "1", "type": "interaction", "ts": 1790000000000, "customer_id": "c", '
        b'"channel": "email"}',
        b"{oops",
        b'{"event_id": "2", "type": "conversion", "ts": 1790000060000, "customer_id": "c", '
        b'"conversion": "lead"}',
    ]
    rejected: list = []
    out = list(attribute_events(lines, Config(models=("linear",)), Limits(), 1_800_000_000_000, rejected))
    assert len(out) == 1 and b'"shares":[1.0]' in out[0]
    assert [(r.line, r.reason_code) for r in rejected] == [(2, "not_json")]
