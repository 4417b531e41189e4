"""The dashboard in a real browser (Debian's chromium, driven by Playwright): what a person
sees equals `touchstream report` for the same period, the throughput figure moves while
events flow, the page updates as they are attributed, and it logs no errors."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from playwright.async_api import Page, async_playwright

from stream.core.topics import DLQ, RAW
from stream.devtools.simulate import generate
from tests.support.cli import touchstream
from tests.support.events import DAY, HOUR, SCRIPT
from tests.support.kafka import publish, read_all
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is needed (.ci/run installs it: apt-get install chromium)"
    return path


def shifted(events: list[dict], end_ms: int) -> list[dict]:
    """The events moved in time so that the last one happens at `end_ms`."""
    offset = end_ms - max(e["ts"] for e in events)
    return [e | {"ts": e["ts"] + offset} for e in events]


def today_and_past(now_ms: int) -> int:
    """An hour ago, or half-way into today when today began less than two hours ago: the last
    conversion of the script must fall today (CI runs at any hour, midnight included)."""
    midnight_ms = now_ms - now_ms % DAY
    return now_ms - min(HOUR, (now_ms - midnight_ms) // 2)


def report(settings, first: str, last: str, by: str) -> dict:
    printed = touchstream(
        settings, "report", "--from", first, "--to", last, "--by", by, "--format", "json", check=True
    )
    return orjson.loads(printed.stdout)


def fixed(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def change(x: float, base: float) -> str:
    """A model's credit against last touch's, as the comparison prints it."""
    return "–" if not base else f"{(x - base) / base * 100:+.1f} %"


def expected_rows(doc: dict, model: str) -> list[list[str]]:
    """The channel table's rows as the page should print them."""
    return [
        [
            row["group"],
            fixed(row["models"][model]["conversions"]),
            "",  # the bar
            fixed(row["models"][model]["value"]),
            fixed(row["models"][model]["revenue"]),
            fixed(row["cost"]),
            fixed(row["models"][model]["cpa"]),
            fixed(row["models"][model]["roas"]),
        ]
        for row in doc["rows"]
    ]


async def table(page: Page, body_id: str) -> list[list[str]]:
    return await page.eval_on_selector_all(
        f"#{body_id} tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


async def shows(page: Page, body_id: str, rows: list[list[str]], timeout: float = 30) -> list[list[str]]:
    """Wait until the table shows `rows` (the page polls the report every 10 s); what it shows."""
    deadline = time.monotonic() + timeout
    while (seen := await table(page, body_id)) != rows and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    return seen


def test_the_dashboard_shows_the_report_and_the_live_figures(make_settings, start_worker, tmp_path) -> None:
    settings = make_settings(sweep_interval_ms=1000)
    start_worker(settings)
    now_ms = int(time.time() * 1000)
    end_ms = today_and_past(now_ms)
    script = shifted(SCRIPT, end_ms)  # yesterday and today
    spend = {"event_id": "spend-1", "type": "spend", "ts": end_ms, "channel": "paid_search"}
    publish(settings, settings.topic(RAW), [*script, spend | {"amount": 25.0, "currency": "EUR"}])
    publish(settings, settings.topic(RAW), [(b"x", b"not json")])
    wait_drained(settings)
    assert len(read_all(settings, settings.topic(DLQ))) == 1
    errors = asyncio.run(look(settings, now_ms, tmp_path / "dashboard.png"))
    assert errors == []


async def look(settings, now_ms: int, screenshot: Path) -> list[str]:
    """What a person sees, checked against the CLI's report; the browser's errors."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    week = (today - timedelta(days=6)).isoformat(), today.isoformat()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium(), headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 1600})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        await page.goto(f"http://127.0.0.1:{settings.web_port}/dashboard")

        # today, under the default model (linear): the channel rows as the CLI reports them
        await page.click("text=Today")
        day = expected_rows(report(settings, today.isoformat(), today.isoformat(), "channel"), "linear")
        assert day, "the script's last conversions happen today"
        assert await shows(page, "channels", day) == day
        await page.click("text=7 days")
        weekly = report(settings, *week, "channel")
        assert weekly["rows"] and "last_touch" in weekly["models"]
        rows = expected_rows(weekly, "linear")
        assert await shows(page, "channels", rows) == rows
        await page.select_option("#model", "first_touch")
        rows = expected_rows(weekly, "first_touch")
        assert await shows(page, "channels", rows) == rows
        await the_other_tables(page, settings, weekly, week)

        # events flowing: the throughput figure moves, and the report follows once they are in
        flowing = asyncio.create_task(asyncio.to_thread(publish_paced, settings, now_ms))
        await page.wait_for_function(
            "() => Number(document.querySelector('[data-testid=\"events-rate\"]').textContent) > 0",
            timeout=30_000,
        )
        await flowing
        await asyncio.to_thread(wait_drained, settings)
        rows = expected_rows(report(settings, *week, "channel"), "first_touch")
        assert await shows(page, "channels", rows) == rows
        await page.wait_for_function(  # their conversions' latency is measured
            "() => document.querySelector('[data-testid=\"latency-p99\"]').textContent !== '–'",
            timeout=10_000,
        )
        await page.screenshot(path=screenshot, full_page=True)
        await browser.close()
    return errors


async def the_other_tables(page: Page, settings, weekly: dict, week: tuple[str, str]) -> None:
    """Model comparison (under first_touch), campaigns, conversion types, paths and the lag,
    as reported."""
    assert [r[0] for r in await table(page, "comparison")] == [r["group"] for r in weekly["rows"]]
    assert await table(page, "comparison") == [
        [
            r["group"],
            *[fixed(r["models"][m]["conversions"]) for m in weekly["models"]],
            change(r["models"]["first_touch"]["conversions"], r["models"]["last_touch"]["conversions"]),
        ]
        for r in weekly["rows"]
    ]
    campaigns = report(settings, *week, "campaign")
    assert [r[0] for r in await table(page, "campaigns")] == [r["group"] for r in campaigns["rows"]]
    assert [r[:2] for r in await table(page, "types")] == [
        [t["conversion"], str(t["count"])] for t in weekly["conversion_types"]
    ]
    assert (await table(page, "paths"))[0][0] == weekly["top_paths"][0]["path"]
    await page.wait_for_function(  # measured (every 5 s) since the drain: "–" until measured
        "() => document.querySelector('[data-testid=\"lag-total\"]').textContent === '0'", timeout=30_000
    )


def publish_paced(settings, now_ms: int) -> None:
    """40 simulated customers' journeys over the last 30 days (about 400 events, 17 of them
    conversions), at 100 events per second."""
    events = list(generate(40, seed=5, end_ms=now_ms, span_ms=30 * DAY))
    assert sum(e["type"] == "conversion" for e in events) > 0
    publish(settings, settings.topic(RAW), events, rate=100)
