"""`touchstream demo`: broker, Redis, a worker and the simulator; a live summary on screen (rich
`Live`: rates, lag, latency, credit per channel, the last conversions) beside the dashboard.

Everything runs locally with no Docker (`stream.devtools.services`); `--redis-cluster` starts a
Redis Cluster (3 primaries, 3 replicas) for the worker's state instead of one redis-server.
KAFKA_BOOTSTRAP_SERVERS / REDIS_URL point it at existing services instead. Ctrl-C stops
everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http.client
import signal
import tempfile
import time
import urllib.request
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stream.adapters.kafka import clients
from stream.adapters.kafka.security import aiokafka_options
from stream.cli.topics import create_missing
from stream.core.summary import channel_rows, conversion_line, headline
from stream.core.topics import CONVERSIONS, RAW
from stream.devtools.runner import WorkerProcess
from stream.devtools.services import Services, started_services
from stream.devtools.simulate import endless
from stream.settings import Settings, redact_url

TABLE_MODELS = ("first_touch", "linear", "last_touch")
LINE_MODELS = ("last_touch", "linear")
RECENT = 6  # conversions shown
PERIOD_DAYS = 30
POLL_S = 2.0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def web_url(settings: Settings, path: str) -> str:
    """The worker's web page `path`, on loopback when the server listens on every address."""
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::", "") else settings.web_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.web_port}{path}"


def add_parser(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="start broker, Redis, worker and simulator; print live attribution",
        epilog=(
            "examples:\n  touchstream demo\n  touchstream demo --customers 500 --rate 50\n"
            "  touchstream demo --redis-cluster    # state in a local Redis Cluster, not one server\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--rate", type=float, default=300.0, help="events per second")
    demo.add_argument(
        "--redis-cluster",
        action="store_true",
        help="start a local Redis Cluster (3 primaries, 3 replicas) instead of one redis-server, "
        "and run the worker on it (unless REDIS_URL names a Redis to use)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    return run_demo(settings, customers=args.customers, rate=args.rate, redis_cluster=args.redis_cluster)


def demo_settings(settings: Settings, services: Services) -> Settings:
    """The worker's settings on the demo's services: a Redis Cluster started here is named by
    every node (the seeds); the environment's Redis keeps the environment's settings."""
    redis = {"redis_cluster": True} if services.redis_cluster else {}
    return dataclasses.replace(
        settings,
        **redis,
        kafka_bootstrap_servers=services.bootstrap,
        redis_url=services.redis_url,
        replication_factor=1,  # the demo's one local broker
        app_id=f"touchstream-demo-{int(time.time())}",
        log_level="info",
    )


def run_demo(settings: Settings, customers: int, rate: float, redis_cluster: bool = False) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly on SIGTERM as on Ctrl-C
    console = Console()
    with tempfile.TemporaryDirectory(prefix="touchstream-demo-") as tmp:  # Kafka data: gigabytes
        workdir = Path(tmp)
        console.print(
            f"[bold]Touchstream demo[/] — dashboard: {web_url(settings, '/dashboard')} (once it is up)"
        )
        redis_kind = "a Redis Cluster (3 primaries, 3 replicas)" if redis_cluster else "Redis"
        console.print(f"starting Kafka and {redis_kind} in {workdir} …")
        with started_services(workdir, redis_cluster=redis_cluster) as services:
            settings = demo_settings(settings, services)
            create_missing(settings)
            worker = WorkerProcess(settings, workdir / "worker.log")
            console.print(
                f"broker {settings.kafka_bootstrap_servers} · {_redis_line(settings, services)} · "
                f"starting worker (log: {worker.log}) …",
                soft_wrap=True,
            )
            try:
                worker.start(timeout=120)
                console.print(f"worker ready · dashboard: {web_url(settings, '/dashboard')} · Ctrl-C stops")
                with contextlib.suppress(KeyboardInterrupt):
                    asyncio.run(_live(settings, customers, rate, console))
            finally:
                console.print("stopping worker …")
                worker.stop()
        console.print("stopped.")
        return 0


def _redis_line(settings: Settings, services: Services) -> str:
    """Which Redis the worker uses, as far as it is known (the password never shown)."""
    kind = "redis cluster" if settings.redis_cluster else "redis"
    origin = " (the environment's)" if services.redis_from_env else ""
    return f"{kind} {redact_url(settings.redis_url)}{origin}"


async def _live(settings: Settings, customers: int, rate: float, console: Console) -> None:
    """Simulated customers in; the summary redrawn in place until Ctrl-C."""
    records = (clients.event_record(e) for e in endless(customers, seed=int(time.time())))
    simulator = asyncio.create_task(
        clients.produce(
            settings.kafka_bootstrap_servers,
            settings.topic(RAW),
            records,
            rate,
            options=aiokafka_options(settings),
        )
    )
    view = View()
    poller = asyncio.create_task(_poll(settings, view))
    try:
        with Live(console=console, get_renderable=view.render, refresh_per_second=2):
            async for msg in clients.records(
                settings.kafka_bootstrap_servers,
                settings.topic(CONVERSIONS),
                options=aiokafka_options(settings),
            ):
                view.recent.append(conversion_line(orjson.loads(msg.value), LINE_MODELS))
    finally:
        if not console.is_terminal:
            console.print()  # the last frame, printed once when not on a terminal, ends its line
        for task in (simulator, poller):
            task.cancel()
        await asyncio.gather(simulator, poller, return_exceptions=True)


@dataclasses.dataclass
class View:
    """What the terminal shows: the worker's live figures and report, the last conversions."""

    live: dict[str, Any] | None = None
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    recent: deque[str] = dataclasses.field(default_factory=lambda: deque(maxlen=RECENT))

    def render(self) -> Group:
        table = Table(title=f"credit per channel, last {PERIOD_DAYS} days", title_justify="left")
        table.add_column("channel", no_wrap=True)
        for model in TABLE_MODELS:
            table.add_column(f"{model}\nconv.", justify="right", no_wrap=True)
            table.add_column("value", justify="right", no_wrap=True)
        for row in channel_rows(self.report, TABLE_MODELS):
            table.add_row(*row)
        lines = list(self.recent) or ["(waiting for the first conversion)"]
        return Group(
            Text(headline(self.live), style="bold green"),
            table,
            Text("\n".join(lines), no_wrap=True, overflow="ellipsis"),
        )


async def _poll(settings: Settings, view: View) -> None:
    """The worker's `/api/live` and `/api/report` into `view` every 2 s; a page the worker
    cannot serve yet keeps the figures already shown."""
    models = ",".join(TABLE_MODELS)
    while True:
        today = datetime.now(UTC).date()
        first = today - timedelta(days=PERIOD_DAYS - 1)
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            view.live = await asyncio.to_thread(_get, settings, "/api/live")
            view.report = await asyncio.to_thread(
                _get, settings, f"/api/report?from={first}&to={today}&by=channel&models={models}"
            )
        await asyncio.sleep(POLL_S)


def _get(settings: Settings, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(web_url(settings, path), timeout=5) as page:
        return orjson.loads(page.read())
