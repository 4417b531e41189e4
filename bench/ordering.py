"""Out-of-order arrival on a real worker: lateness, revisions, skew, and exactness, in one run.

    python -m bench.ordering [--persons 250] [--partitions 8] [--window 1h]

The multi-device scenario (anonymous first, logged in later; one person's events on two
partitions), with Kafka record timestamps set to the event times, drained by one worker
four times, each on its own topics and a flushed Redis: `backlog`, everything published
before the worker starts (the raw partitions aligned by event time); `backlog-unaligned`,
the same with the alignment off (each partition drained at the client's pace); `lagging`, the
customers' events first and the anonymous devices' only once those are processed (a
lagging producer: every anonymous event arrives late); `small-window`, the same with
`TOUCHSTREAM_REDERIVE_MS` set to `--window` (late interactions older than that become
touchpoints of their own). For each: events lost to the DLQ, conversions never
attributed, events applied behind the person's latest
event (count, p99), conversions re-emitted as revisions, the largest partition skew the
worker reported, late interactions approximated, worker CPU per event, and how many
conversions' latest revision differ from `touchstream attribute --events` on the
time-sorted events (0 = exact).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import re
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
from redis import Redis

from bench.measure import cpu_seconds
from stream.adapters.kafka.clients import collect, event_time_record, group_lag, produce
from stream.adapters.kafka.topics import ensure_topics, persons_topic
from stream.core.config import DAY_MS
from stream.core.topics import CONVERSIONS, DLQ, RAW
from stream.devtools import devices
from stream.devtools.runner import WorkerProcess, metric
from stream.devtools.services import local_services
from stream.offline.replay import EventReplay
from stream.settings import Settings, parse_field

UNALIGNED = 10 * 365 * DAY_MS  # an alignment bound no skew reaches: alignment off
RUNS = ("backlog", "backlog-unaligned", "lagging", "small-window")


def scrape(settings: Settings) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5) as page:
        return page.read().decode()


def lateness(text: str) -> tuple[float, float, float]:
    """(events applied, events applied late, p99 lateness in ms as a bucket bound)."""
    buckets = sorted(
        (float(le) * 1000, float(n))
        for le, n in re.findall(r'touchstream_event_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)', text)
        if le != "+Inf"
    )
    total = float(re.search(r"touchstream_event_lateness_seconds_count (\S+)", text).group(1))  # type: ignore[union-attr]
    on_time = buckets[0][1] if buckets else 0.0
    p99 = next((le for le, n in buckets if n >= 0.99 * total), float("inf"))
    return total, total - on_time, p99


def lagging(settings: Settings) -> int:
    """Records of the worker's inputs it has not committed yet."""
    inputs = [settings.topic(RAW), persons_topic(settings)]
    return sum(asyncio.run(group_lag(settings.kafka_bootstrap_servers, settings.app_id, inputs)).values())


def latest(values: list[bytes]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for value in values:
        doc = orjson.loads(value)
        if (
            doc["kind"] == "conversion"
            and doc["revision"] >= out.get(doc["attribution_id"], {"revision": -1})["revision"]
        ):
            out[doc["attribution_id"]] = doc
    return {k: {**v, "revision": None} for k, v in out.items()}


def run(
    base: Settings,
    name: str,
    overrides: dict[str, int],
    phases: list[list],
    workdir: Path,
    expected: dict[str, dict],
) -> dict:
    """One worker draining the records (published to this run's own topics) to the end:
    the first phase as a backlog, each later one once the worker drained the one before."""
    events = sum(len(p) for p in phases)
    settings = dataclasses.replace(
        base,
        app_id=f"{base.app_id}-{name}",
        topic_prefix=f"{base.topic_prefix}{name}.",
        **overrides,
    )
    Redis.from_url(settings.redis_url).flushdb()
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(settings.kafka_bootstrap_servers, settings.topic(RAW), phases[0]))
    worker = WorkerProcess(settings, workdir / f"worker-{name}.log").start(timeout=120)
    assert worker.proc is not None
    started, cpu0, skew = time.monotonic(), cpu_seconds(worker.proc.pid), 0.0
    applied, still_since, published = 0.0, time.monotonic(), len(phases[0])
    later = list(phases[1:])
    try:
        # done when every event went through, the inputs are committed and nothing more moves
        while time.monotonic() - started < 600:
            text = scrape(settings)
            skew = max(
                [
                    skew,
                    *(
                        1000 * float(v)
                        for v in re.findall(r"touchstream_partition_skew_seconds\{[^}]*\} (\S+)", text)
                    ),
                ]
            )
            now = metric(settings, 'touchstream_batch_size_sum{stage="journeys"}')
            if now != applied:
                applied, still_since = now, time.monotonic()
            elif applied >= published and time.monotonic() - still_since > 1 and not lagging(settings):
                if not later:
                    break
                phase = later.pop(0)
                asyncio.run(produce(settings.kafka_bootstrap_servers, settings.topic(RAW), phase))
                published += len(phase)
            time.sleep(0.5)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(worker.proc.pid) - cpu0
        total, late, p99 = lateness(scrape(settings))
        replayed = metric(settings, "touchstream_replayed_events_total")
        duplicates = metric(settings, "touchstream_duplicate_events_total")
        approximated = metric(settings, "touchstream_late_approximated_total")
    finally:
        worker.stop()
    values = [
        m.value
        for m in asyncio.run(collect(settings.kafka_bootstrap_servers, settings.topic(CONVERSIONS), settle=3))
    ]
    got = latest(values)
    revisions = sum(orjson.loads(v)["revision"] > 0 for v in values)
    dead = asyncio.run(collect(settings.kafka_bootstrap_servers, settings.topic(DLQ), settle=1))
    return {
        "run": name,
        "re-derive window": f"{settings.rederive_ms / DAY_MS:g} d"
        if settings.rederive_ms >= DAY_MS
        else f"{settings.rederive_ms / 1000:g} s",
        "alignment": "off" if settings.align_ms >= UNALIGNED else f"{settings.align_ms / 1000:g} s",
        "lost to the DLQ": len(dead),
        "never attributed": len(set(expected) - set(got)),
        "applied late": f"{late:.0f} of {total:.0f} ({late / max(total, 1):.1%})",
        "p99 lateness": "0" if p99 == 0 else f"<= {p99 / 1000:g} s",
        "revisions": revisions,
        "max skew": f"{skew / DAY_MS:.1f} d" if skew >= DAY_MS else f"{skew / 1000:.0f} s",
        "worker CPU us/event": round(cpu / events * 1e6),
        "seconds": round(elapsed, 1),
        "conversions differing": sum(k in got and got[k] != v for k, v in expected.items())
        + len(set(got) - set(expected)),
        "approximated": f"{approximated:.0f}",
        "replayed/duplicates": f"{replayed:.0f}/{duplicates:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=250)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--window", default="1h", help="the re-derive window of the small-window run")
    parser.add_argument("--workdir", type=Path, help="keep the services' data and the worker logs here")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"which runs, of {','.join(RUNS)}")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # fresh topics: "not leader, retrying"
    start = int(time.time() * 1000) - 60 * DAY_MS
    events = devices.publication_order(devices.persons(args.persons, seed=11, start_ms=start), seed=12)
    replay = EventReplay(Settings().config(), Settings().limits(), int(time.time() * 1000), args.partitions)
    expected = latest(list(replay.run(orjson.dumps(e) for e in sorted(events, key=lambda e: e["ts"]))))
    with contextlib.ExitStack() as stack:
        tmp = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="touchstream-bench-"))
        )
        bootstrap, url = stack.enter_context(local_services(Path(tmp)))
        stamp = int(time.time())
        base = Settings.from_env(
            {},
            kafka_bootstrap_servers=bootstrap,
            redis_url=url,
            app_id=f"order-{stamp}",
            topic_prefix=f"order{stamp}.",
            partitions=args.partitions,
            web_port=16199,
            log_level="info",
        )
        records = [event_time_record(e) for e in events]
        known, anonymous = devices.by_device(events)
        lagging = [[event_time_record(e) for e in known], [event_time_record(e) for e in anonymous]]
        small = parse_field("rederive_ms", args.window)
        plans = {
            "backlog": ({}, [records]),
            "backlog-unaligned": ({"align_ms": UNALIGNED}, [records]),
            "lagging": ({}, lagging),
            "small-window": ({"rederive_ms": small}, lagging),
        }
        rows = [
            run(base, name, *plans[name], Path(tmp), expected)
            for name in args.runs.split(",")
            if name in plans
        ]
    print(
        f"{len(events)} events of {args.persons} persons over {args.partitions} partitions, "
        f"{len(expected)} conversions; record timestamps = event times"
    )
    for row in rows:
        print("  " + " | ".join(f"{k}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
