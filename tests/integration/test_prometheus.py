"""A live worker's /metrics, the alert rules and the Grafana dashboard: Prometheus' own tool
checks the page and the rules, and every metric a rule or a dashboard query names is exposed.

`promtool` comes from Debian's `prometheus` package (`.ci/run` installs it when missing)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stream.core.topics import RAW
from stream.devtools.runner import WorkerProcess
from stream.settings import Settings
from tests.support.events import SCRIPT
from tests.support.kafka import publish
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration
DEPLOY = Path(__file__).parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "touchstream.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}  # the import input, never a fixed uid
GRID_WIDTH = 24  # Grafana's grid columns


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    return subprocess.run([tool, *args], input=stdin, capture_output=True, timeout=60)


def metric_names(promql: str) -> set[str]:
    """The Touchstream and Faust metric names a PromQL expression (or a whole rule file) names."""
    return set(re.findall(r"\b((?:touchstream|faust)_[a-z0-9_]+)", promql))


def unexposed(named: set[str], exposed: bytes) -> set[str]:
    """The names no metric family of a /metrics page provides: a family `x` provides `x` and its
    samples' names (`x_total`, `x_bucket`, `x_sum`, `x_count`, `x_created`)."""
    families = set(re.findall(r"^# TYPE (\S+)", exposed.decode(), re.MULTILINE))
    base = re.compile(r"_(total|bucket|sum|count|created)$")
    return {name for name in named if name not in families and base.sub("", name) not in families}


@pytest.fixture
def exposed(
    make_settings: Callable[..., Settings], start_worker: Callable[[Settings], WorkerProcess]
) -> bytes:
    """A live worker's /metrics page, once it processed a script of events."""
    settings = make_settings()
    start_worker(settings)
    publish(settings, settings.topic(RAW), SCRIPT)
    wait_drained(settings)
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=10) as page:
        return page.read()


def test_metrics_and_alert_rules_pass_promtool_and_name_real_metrics(exposed: bytes) -> None:
    checked = promtool("check", "metrics", stdin=exposed)
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    rules = promtool("check", "rules", str(ALERTS))
    assert rules.returncode == 0 and b"SUCCESS: 6 rules found" in rules.stdout, rules.stderr.decode()

    named = metric_names(ALERTS.read_text())
    assert named and unexposed(named, exposed) == set()


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those folded inside a collapsed row included."""
    return [p for top in model["panels"] for p in [top, *top.get("panels", [])]]


def dashboard_exprs(model: dict[str, Any]) -> list[str]:
    """The PromQL of every panel target."""
    return [t["expr"] for p in dashboard_panels(model) for t in p.get("targets", [])]


def variable_queries(model: dict[str, Any]) -> list[str]:
    """The queries of the template variables (`label_values(...)`: Grafana's, not PromQL)."""
    return [v["definition"] for v in model["templating"]["list"] if v["type"] == "query"]


def as_recording_rules(exprs: list[str]) -> str:
    """The expressions as a rule file for `promtool check rules` (which parses each one), with
    Grafana's variables replaced by values: an interval for `$__rate_interval`, a word otherwise."""
    rules = []
    for n, expr in enumerate(exprs):
        concrete = re.sub(r"\$\w+", "x", re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr))
        rules.append(f"      - record: dashboard:query_{n}\n        expr: {json.dumps(concrete)}\n")
    return "groups:\n  - name: dashboard\n    rules:\n" + "".join(rules)


def overlapping(panels: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    """The grid cells (panel id, x, y) that another panel already covers."""
    covered: set[tuple[int, int]] = set()
    clashes = []
    for panel in panels:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                if (x, y) in covered:
                    clashes.append((panel["id"], x, y))
                covered.add((x, y))
    return clashes


def test_dashboard_is_an_importable_grafana_model() -> None:
    model = dashboard()
    assert model["title"] and model["uid"] and model["id"] is None and model["schemaVersion"] >= 36
    inputs = {i["name"]: i for i in model["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"

    panels = dashboard_panels(model)
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids))
    for panel in panels:
        pos = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= pos.keys() and 0 <= pos["x"] < pos["x"] + pos["w"] <= GRID_WIDTH
        if panel["type"] == "row":
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"] and t.get("datasource", DATASOURCE) == DATASOURCE for t in panel["targets"])
    assert overlapping(model["panels"]) == []
    assert all(v["datasource"] == DATASOURCE for v in model["templating"]["list"] if v["type"] == "query")


def test_dashboard_queries_parse_and_name_only_metrics_a_worker_exposes(
    exposed: bytes, tmp_path: Path
) -> None:
    model = dashboard()
    exprs = dashboard_exprs(model)
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text(as_recording_rules(exprs))
    parsed = promtool("check", "rules", str(rules))
    assert parsed.returncode == 0, (parsed.stdout + parsed.stderr).decode()
    assert f"SUCCESS: {len(exprs)} rules found".encode() in parsed.stdout

    named = set().union(*map(metric_names, exprs + variable_queries(model)))
    assert {
        "touchstream_events_in_total",
        "touchstream_dlq_total",
        "touchstream_attributions_out_total",
        "touchstream_consumer_lag_records",
        "touchstream_latency_seconds_bucket",
        "touchstream_retries_total",
        "touchstream_stalled",
        "touchstream_batch_size_bucket",
        "touchstream_event_lateness_seconds_bucket",
        "touchstream_partition_skew_seconds",
        "touchstream_owned_partitions",
    } <= named
    assert unexposed(named, exposed) == set()
