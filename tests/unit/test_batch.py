"""Batch mode over aggregated path files: exact channel totals and clear errors."""

import io

import orjson
import pytest

from stream.core.config import Config, Limits, ModelParams
from stream.errors import InputError
from stream.offline.paths import heuristic_totals, read_paths
from stream.offline.replay import attribute_events

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
        ("a,1,2,3\nb,-1,0,0\n", "line 2: counts must be finite and not negative"),
        ("a,nan,0,0\n", "line 1: counts must be finite and not negative"),
        ("a,1,1e400,0\n", "line 1: counts must be finite and not negative"),
        ("a,0,50,1\n", r"line 1: a conversion value \(50\) without conversions"),
        ('"a\n> b",1,x,0\n', "line 2: counts must be numbers"),  # a quoted path over two lines
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


def test_markov_totals_from_a_paths_file() -> None:
    """markov: order-1 chain over all 46 journeys of the CSV (converting and null):
    start→email 22, start→paid_search 24; email→direct 15, email→paid_search 7;
    paid_search→direct 7, paid_search→conv 4, paid_search→null 20; direct→conv 10, direct→null 12.
    The chain reproduces the observed rate: P(conv) = 14/46.
    Without direct: only paid_search→conv survives, reached from start (24/46) and via email (22/46·7/22):
      P = 31/46 · 4/31 = 4/46, RE_direct = 1 − 4/14.
    Without paid_search: start→email→direct→conv = 22/46 · 15/22 · 10/22, RE = 1 − (150/1012)/(14/46).
    Without email: start→paid_search (24/46) then conv 4/31 or →direct 7/31 · 10/22.
    Conversions: 14 × RE_c / ΣRE.
    Value: v̄(direct) = 1000/10 = 100, v̄(paid_search) = 100/4 = 25; V = 1100/46 (as observed).
    Without direct: 31/46 · 4/31 · 25 = 100/46, REv = 1 − 100/1100 = 10/11.
    Without paid_search: 22/46 · 15/22 · 10/22 · 100 = 15000/1012, REv = 1 − (15000/1012)/(1100/46).
    Without email: 24/46 · (4/31 · 25 + 7/31 · 10/22 · 100), REv = 1 − that/(1100/46).
    Value: 1100 × REv_c / ΣREv."""
    from stream.attribution import markov
    from stream.attribution.paths import PathCount
    from stream.offline.paths import path_totals

    got = path_totals(read_paths(io.StringIO(CSV)), ("markov",), ModelParams())
    p, v = 14 / 46, 1100 / 46
    effects = {
        "direct": 1 - (4 / 46) / p,
        "paid_search": 1 - (22 / 46 * 15 / 22 * 10 / 22) / p,
        "email": 1 - (24 / 46 * (4 / 31 + 7 / 31 * 10 / 22)) / p,
    }
    value_effects = {
        "direct": 10 / 11,
        "paid_search": 1 - (15000 / 1012) / v,
        "email": 1 - (24 / 46 * (4 / 31 * 25 + 7 / 31 * 10 / 22 * 100)) / v,
    }
    rows = read_paths(io.StringIO(CSV))
    stats = {row.path: PathCount(row.conversions, row.value, row.nulls) for row in rows}
    assert markov.removal_effects(stats) == pytest.approx(effects, abs=1e-12)
    assert markov.value_removal_effects(stats) == pytest.approx(value_effects, abs=1e-12)
    total_re, total_rev = sum(effects.values()), sum(value_effects.values())
    for channel, effect in effects.items():
        assert got["markov"][channel] == pytest.approx(
            {
                "conversions": 14 * effect / total_re,
                "value": 1100 * value_effects[channel] / total_rev,
                "removal_effect": effect,
                "value_removal_effect": value_effects[channel],
            }
        )
    assert_conserved(got)


def test_shapley_totals_from_a_paths_file() -> None:
    """shapley: email>direct's 10 conversions (value 1000) split 5/5 (500/500) between email and
    direct; paid_search keeps its 4 (100); the null row adds 0.
    shapley_ordered: the same by position: email (5) at 1; direct at 2 (5), also seen at 3 on
    the null row: (0, 5, 0); paid_search (4, 0). Value: (500), (0, 500, 0), (100, 0)."""
    from stream.offline.paths import path_totals

    got = path_totals(read_paths(io.StringIO(CSV)), ("shapley", "shapley_ordered"), ModelParams())
    assert got["shapley"] == {
        "direct": {"conversions": 5.0, "value": 500.0},
        "email": {"conversions": 5.0, "value": 500.0},
        "paid_search": {"conversions": 4.0, "value": 100.0},
    }
    assert got["shapley_ordered"] == {
        "direct": {
            "conversions": 5.0,
            "value": 500.0,
            "positions": [0, 5, 0],
            "value_positions": [0, 500, 0],
        },
        "email": {"conversions": 5.0, "value": 500.0, "positions": [5], "value_positions": [500]},
        "paid_search": {"conversions": 4.0, "value": 100.0, "positions": [4, 0], "value_positions": [100, 0]},
    }
    assert_conserved(got)


def assert_conserved(got: dict) -> None:
    """Plain floats (`--format json` can print them), and every model's totals add up to the
    file's 14 conversions and 1100 of value."""
    assert orjson.loads(orjson.dumps(got)) == got
    for totals in got.values():
        assert sum(c["conversions"] for c in totals.values()) == pytest.approx(14.0)
        assert sum(c["value"] for c in totals.values()) == pytest.approx(1100.0)


def test_batch_revenue_follows_its_conversion_without_a_person_id() -> None:
    lines = [
        b'{"event_id": "1", "type": "interaction", "ts": 1790000000000, "customer_id": "c",'
        b' "channel": "email"}',
        b'{"event_id": "2", "type": "conversion", "ts": 1790000060000, "customer_id": "c",'
        b' "conversion": "lead", "conversion_id": "L"}',
        b'{"event_id": "3", "type": "revenue", "ts": 1795000000000, "conversion_id": "L", "value": 900}',
        b'{"event_id": "4", "type": "revenue", "ts": 1795000000000, "conversion_id": "X", "value": 1}',
    ]
    rejected: list = []
    out = [
        orjson.loads(v)
        for v in attribute_events(lines, Config(models=("linear",)), Limits(), 1_800_000_000_000, rejected)
    ]
    assert [(d["kind"], d["attribution_id"]) for d in out] == [("conversion", "2"), ("revenue", "3")]
    assert out[1]["refers_to"] == "2" and out[1]["models"]["linear"]["values"] == [900.0]
    assert [(r.line, r.reason_code) for r in rejected] == [(4, "unknown_conversion")]
