"""The CLI as users run it: `touchstream produce`, `simulate --output`, `--help`, errors."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from stream.runner import settings_env
from tests.integration.test_pipeline import SCRIPT, values

pytestmark = pytest.mark.integration


def touchstream(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_produce_a_jsonl_file_with_a_broken_line(make_settings, start_worker, tmp_path) -> None:
    settings = make_settings()
    start_worker(settings)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in SCRIPT) + b"\n{broken\n\n")
    result = touchstream(settings, "produce", str(events))
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip() == f"published {len(SCRIPT) + 1} values to {settings.topic('touchpoints.raw')}"
    )
    out = values(settings.kafka_bootstrap_servers, settings.topic("attribution.conversions"), count=4)
    assert sorted(d["attribution_id"] for d in out) == ["alice-5", "bob-2", "carol-1", "dave-3"]
    dlq = values(settings.kafka_bootstrap_servers, settings.topic("touchpoints.dlq"), count=1)
    assert [(d["reason_code"], d["raw"]) for d in dlq] == [("not_json", "{broken")]


def test_cli_errors_and_help(make_settings, tmp_path) -> None:
    settings = make_settings()
    missing = touchstream(settings, "produce", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "TOUCHSTREAM_SESSION_TIMEOUT_MS" in touchstream(settings, "--help").stdout
    bad = subprocess.run(
        [sys.executable, "-m", "stream.cli", "produce", "x"],
        capture_output=True,
        text=True,
        env={**settings_env(settings), "TOUCHSTREAM_PARTITIONS": "zero"},
    )
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
