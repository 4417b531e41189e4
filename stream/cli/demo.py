"""`touchstream demo`: broker, Redis, a worker and the simulator, with live attribution on screen.

Everything runs locally with no Docker (`stream.devtools.services`); KAFKA_BOOTSTRAP_SERVERS /
REDIS_URL point it at existing services instead. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from stream.adapters.kafka import clients
from stream.adapters.kafka.security import aiokafka_options
from stream.adapters.kafka.topics import ensure_topics
from stream.core.topics import CONVERSIONS, RAW
from stream.devtools.runner import WorkerProcess, metric
from stream.devtools.services import local_services
from stream.devtools.simulate import endless
from stream.settings import Settings

SHOWN_MODELS = ("first_touch", "linear", "time_decay", "last_touch")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="start broker, Redis, worker and simulator; print live attribution")
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--rate", type=float, default=300.0, help="events per second")


def run(settings: Settings, args: argparse.Namespace) -> int:
    return run_demo(settings, customers=args.customers, rate=args.rate)


def run_demo(settings: Settings, customers: int, rate: float) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly on SIGTERM as on Ctrl-C
    console = Console()
    with tempfile.TemporaryDirectory(prefix="touchstream-demo-") as tmp:  # Kafka data: gigabytes
        workdir = Path(tmp)
        console.print(f"[bold]Touchstream demo[/] — starting Kafka and Redis in {workdir} …")
        with local_services(workdir) as (bootstrap, redis_url):
            settings = dataclasses.replace(
                settings,
                kafka_bootstrap_servers=bootstrap,
                redis_url=redis_url,
                app_id=f"touchstream-demo-{int(time.time())}",
                log_level="info",
            )
            asyncio.run(ensure_topics(settings))
            worker = WorkerProcess(settings, workdir / "worker.log")
            console.print(f"broker {bootstrap} · redis {redis_url} · starting worker (log: {worker.log}) …")
            try:
                worker.start(timeout=120)
                console.print(
                    f"worker ready · metrics on http://{settings.web_host}:{settings.web_port}/metrics"
                )
                with contextlib.suppress(KeyboardInterrupt):
                    asyncio.run(_live(settings, customers, rate, console))
            finally:
                console.print("stopping worker …")
                worker.stop()
        console.print("stopped.")
        return 0


async def _live(settings: Settings, customers: int, rate: float, console: Console) -> None:
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
    status = asyncio.create_task(_status(settings, console))
    try:
        async for msg in clients.records(
            settings.kafka_bootstrap_servers,
            settings.topic(CONVERSIONS),
            options=aiokafka_options(settings),
        ):
            console.print(_line(orjson.loads(msg.value)))
    finally:
        for task in (simulator, status):
            task.cancel()
        await asyncio.gather(simulator, status, return_exceptions=True)


def _line(doc: dict[str, Any]) -> str:
    conv = doc["conversion"]
    who = f"[cyan]{doc['person_id']:>8}[/] [bold]{conv['conversion']:<8}[/]"
    head = f"{who} {conv['value']:>8.2f} {conv['currency']}"
    if doc["unattributed"]:
        return head + "  [dim](unattributed)[/]"
    path = " > ".join(t["channel"] for t in doc["touchpoints"])
    credit = "  ".join(
        f"{m}: " + ",".join(f"{s:.2f}" for s in doc["models"][m]["shares"])
        for m in SHOWN_MODELS
        if m in doc["models"]
    )
    return f"{head}  {path}\n{'':>29}[dim]{credit}[/]"


async def _status(settings: Settings, console: Console) -> None:
    previous, then = 0.0, time.monotonic()
    while True:
        await asyncio.sleep(5)
        try:
            events = await asyncio.to_thread(metric, settings, "touchstream_events_in_total")
            out = await asyncio.to_thread(metric, settings, "touchstream_attributions_out_total")
        except OSError:
            continue
        now = time.monotonic()
        console.print(
            f"[green]── {events:.0f} events in ({(events - previous) / (now - then):.0f}/s), "
            f"{out:.0f} attributions out ──[/]"
        )
        previous, then = events, now
