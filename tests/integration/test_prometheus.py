"""A live worker's /metrics and the alert rules, as Prometheus' own tool checks them.

`promtool` comes from Debian's `prometheus` package (`.ci/run` installs it when missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from stream.core.topics import RAW
from tests.support.events import SCRIPT
from tests.support.kafka import publish
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration
ALERTS = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    return subprocess.run([tool, *args], input=stdin, capture_output=True, timeout=60)


def test_metrics_and_alert_rules_pass_promtool_and_name_real_metrics(make_settings, start_worker) -> None:
    settings = make_settings()
    start_worker(settings)
    publish(settings, settings.topic(RAW), SCRIPT)
    wait_drained(settings)
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=10) as page:
        exposed = page.read()

    checked = promtool("check", "metrics", stdin=exposed)
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    rules = promtool("check", "rules", str(ALERTS))
    assert rules.returncode == 0 and b"SUCCESS: 6 rules found" in rules.stdout, rules.stderr.decode()

    families = set(re.findall(r"^# TYPE (\S+)", exposed.decode(), re.MULTILINE))
    named = set(re.findall(r"\b((?:touchstream|faust)_[a-z_]+)", ALERTS.read_text()))
    missing = {m for m in named if re.sub(r"_(bucket|total)$", "", m) not in families and m not in families}
    assert named and missing == set()
