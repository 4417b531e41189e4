"""The CLI as users run it: `touchstream produce`, `simulate --output`, `--help`, errors."""

from __future__ import annotations

import orjson
import pytest

from stream.core.topics import CONVERSIONS, DLQ, RAW
from tests.support.cli import touchstream
from tests.support.events import SCRIPT, SCRIPT_CONVERSIONS
from tests.support.kafka import values
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration


def test_produce_a_jsonl_file_with_a_broken_line(make_settings, start_worker, tmp_path) -> None:
    settings = make_settings()
    start_worker(settings)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in SCRIPT) + b"\n{broken\n\n")
    result = touchstream(settings, "produce", str(events))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"published {len(SCRIPT) + 1} values to {settings.topic(RAW)}"
    wait_drained(settings)
    out = values(settings, settings.topic(CONVERSIONS))
    assert sorted(d["attribution_id"] for d in out) == SCRIPT_CONVERSIONS
    dlq = values(settings, settings.topic(DLQ))
    assert [(d["reason_code"], d["raw"]) for d in dlq] == [("not_json", "{broken")]


def test_cli_errors_and_help(make_settings, tmp_path) -> None:
    settings = make_settings()
    missing = touchstream(settings, "produce", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "TOUCHSTREAM_SESSION_TIMEOUT_MS" in touchstream(settings, "--help").stdout
    bad = touchstream(settings, "produce", "x", env={"TOUCHSTREAM_PARTITIONS": "zero"})
    assert bad.returncode == 2 and "TOUCHSTREAM_PARTITIONS" in bad.stderr


def test_simulate_writes_realistic_journeys(make_settings, tmp_path) -> None:
    settings = make_settings()
    out = tmp_path / "sim.jsonl"
    assert touchstream(settings, "simulate", "--customers", "200", "--output", str(out)).returncode == 0
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    kinds = {t: sum(e["type"] == t for e in events) for t in ("interaction", "conversion")}
    customers = {e["customer_id"] for e in events}
    converted = {e["customer_id"] for e in events if e["type"] == "conversion"}
    assert len(customers) == 200
    assert kinds["interaction"] > 5 * kinds["conversion"] > 0
    assert len(converted) < len(customers) / 2  # most journeys never convert
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_report_errors_are_one_line_and_exit_2(make_settings, tmp_path) -> None:
    """A bad date, an empty period, an unknown model, a missing file, a Redis that is not
    there, a bad flag: one line on stderr, no traceback, a non-zero exit."""
    settings = make_settings()
    cases = [
        (["--from", "2026-13-01"], "expected YYYY-MM-DD"),
        (["--from", "2026-10-02", "--to", "2026-10-01"], "empty period"),
        (["--models", "linear,nope"], "unknown attribution model 'nope'"),
        (["--events", str(tmp_path / "nope.jsonl")], "no such file"),
        (["--top-paths", "-1"], "top paths must be"),
    ]
    for args, why in cases:
        done = touchstream(settings, "report", *args)
        assert (done.returncode, done.stdout) == (2, ""), args
        assert done.stderr.count("\n") == 1 and why in done.stderr and "Traceback" not in done.stderr, args
    away = touchstream(settings, "report", env={"TOUCHSTREAM_REDIS_URL": "redis://127.0.0.1:1"})
    assert away.returncode == 2 and away.stderr.startswith(
        "touchstream: error: cannot read the report counters"
    )
    assert away.stderr.count("\n") == 1
    flag = touchstream(settings, "report", "--by", "colour")
    assert flag.returncode == 2 and "invalid choice" in flag.stderr and "Traceback" not in flag.stderr


def test_report_of_an_empty_period_has_no_rows(make_settings) -> None:
    done = touchstream(
        make_settings(), "report", "--from", "2001-01-01", "--to", "2001-01-31", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["rows"], report["conversion_types"], report["top_paths"]) == ([], [], [])
