"""Snapshot files of `touchstream attribute`: one format with `attribution.models`."""

from __future__ import annotations

import orjson
import pytest

from stream.attribution import snapshot as snapshots
from stream.attribution.paths import PathCount
from stream.cli.snapshots import check_holds, json_values, published_lines, read_snapshot
from stream.core.output import model_messages
from stream.errors import CliError
from tests.support.schemas import validate

STATS = {
    ("email",): PathCount(2, 20.0, 1),
    ("social", "email"): PathCount(1, 5.0, 2),
    ("paid_search",): PathCount(0, 0.0, 3),
}
SNAPSHOT = snapshots.build(STATS)
OTHER = snapshots.build({("email",): PathCount(1, 1.0, 1)})


def test_model_out_lines_are_the_published_values_byte_for_byte() -> None:
    data = published_lines(SNAPSHOT)
    assert data.splitlines() == [m.value for m in model_messages(SNAPSHOT)]
    for line in data.splitlines():
        validate("model", orjson.loads(line))
    assert read_snapshot("snap.jsonl", data) == SNAPSHOT


def test_one_object_or_an_array_reads_too() -> None:
    values = SNAPSHOT.published()
    as_array = orjson.dumps(values, option=orjson.OPT_INDENT_2)
    assert read_snapshot("snap.json", as_array) == SNAPSHOT
    assert [where for where, _ in json_values("snap.json", as_array)] == [
        "snap.json: item 1",
        "snap.json: item 2",
        "snap.json: item 3",
    ]
    one = orjson.dumps(values[0], option=orjson.OPT_INDENT_2)  # a value over several lines
    assert json_values("markov.json", one) == [("markov.json", values[0])]
    assert read_snapshot("markov.json", one).models == ("markov",)


def test_the_last_value_of_each_model_counts_and_only_it_is_read() -> None:
    topic = published_lines(OTHER) + published_lines(SNAPSHOT)  # tail --until-end of two refreshes
    assert read_snapshot("snap.jsonl", topic) == SNAPSHOT
    # a value of an earlier schema before the current ones (the topic's history) is not read
    earlier = orjson.dumps({"schema_version": 2, "model": "shapley", "values": {}, "exact": True})
    assert read_snapshot("snap.jsonl", earlier + b"\n" + published_lines(SNAPSHOT)) == SNAPSHOT


def test_errors_name_the_file_and_the_line() -> None:
    data = published_lines(SNAPSHOT).splitlines()
    cases = {
        b"\n".join([data[0], b"", b'{"a": 1}']): r"^snap\.jsonl:3: not an attribution\.models value: ",
        b"\n".join([data[0], b"{broken"]): r"^snap\.jsonl:2: not JSON \(",
        b"[1]": r"^snap\.jsonl: item 1: not an attribution\.models value: not a JSON object$",
        b"": r"^snap\.jsonl: no attribution\.models value$",
        published_lines(OTHER).splitlines()[0] + b"\n" + data[1]: r"^snap\.jsonl: values of two snapshots",
    }
    for data_, pattern in cases.items():
        with pytest.raises(CliError, match=pattern):
            read_snapshot("snap.jsonl", data_)


def test_a_snapshot_without_a_selected_model_names_it_and_how_to_select() -> None:
    markov_only = read_snapshot("m.jsonl", published_lines(SNAPSHOT).splitlines()[0])
    check_holds("m.jsonl", markov_only, ("linear", "markov"))
    with pytest.raises(CliError) as exc:
        check_holds("m.jsonl", markov_only, ("linear", "markov", "shapley", "shapley_ordered"))
    assert str(exc.value) == (
        "m.jsonl: the snapshot has no shapley or shapley_ordered value (it holds markov); "
        "select the models with --models or TOUCHSTREAM_MODELS, e.g. --models linear,markov"
    )
