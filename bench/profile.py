"""Where a worker spends its CPU: py-spy sampling one `touchstream worker` draining the workload.

    python -m bench.profile [--customers 5000] [--top 25] [--out profile.txt]
    python -m bench.profile --rate 300 [--seconds 15]

The benchmark's workload (`bench.workload`) is published to fresh topics while one
worker drains it; py-spy samples the worker (non-blocking, 250 Hz, busy samples only) from
start to caught up. With `--rate`, the workload is instead published live at that rate
(as the latency benchmark does) and only the thread holding the GIL is sampled: where the
CPU goes when batches are small. Prints the worker's CPU per event, the functions with the
most samples on the CPU: *self* (the function itself was running) and *total* (it was on
the stack), as shares of all samples, and the self samples per library; writes the
collapsed stacks to `--out` (for flame graph tools).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from redis import Redis

from bench.contenders import base_settings, fresh, start_workers
from bench.drain import publish_and_drain
from bench.latency import publish_paced
from bench.measure import cpu_seconds
from bench.workload import workload
from stream.devtools.services import local_services


def _frame(frame: str) -> str:
    """`function (path/to/file.py:12)` as `function (file.py)`."""
    match = re.fullmatch(r"(.*) \((.+?)(?::\d+)?\)", frame)
    return f"{match[1]} ({Path(match[2]).name})" if match else frame


def tally(collapsed: str) -> tuple[int, Counter[str], Counter[str]]:
    """Samples in all, per function on top of the stack, per function anywhere on it."""
    total, own, anywhere = 0, Counter[str](), Counter[str]()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n
    return total, own, anywhere


LIBRARIES = ("aiokafka", "faust", "mode", "redis", "asyncio", "prometheus_client", "stream")


def library(frame: str) -> str:
    """The library a `function (path)` frame of the raw output runs in."""
    path = "/" + frame.rpartition("(")[2]
    return next((lib for lib in LIBRARIES if f"/{lib}/" in path), "other")


def by_library(collapsed: str) -> Counter[str]:
    """Self samples per library."""
    counts = Counter[str]()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            counts[library(stack.split(";")[-1])] += int(count)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--rate", type=float, help="publish live at this rate (events/s) instead")
    parser.add_argument("--seconds", type=float, default=15.0, help="with --rate: for this long")
    args = parser.parse_args()
    records = workload(args.customers)
    if args.rate:
        records = records[: int(args.rate * args.seconds)]
    with tempfile.TemporaryDirectory(prefix="touchstream-profile-") as tmp:
        workdir = Path(tmp)
        with local_services(workdir) as (bootstrap, redis_url):
            settings = fresh(base_settings(bootstrap, redis_url, web_port=16190), "prof")
            (worker,) = start_workers(settings, workdir, Redis.from_url(redis_url))
            assert worker.proc is not None
            cpu0 = cpu_seconds(worker.proc.pid)
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(worker.proc.pid),
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(args.out),
                    *(["--gil"] if args.rate else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                if args.rate:
                    asyncio.run(publish_paced(settings[0], records, args.rate, args.seconds))
                    rate = args.rate
                else:
                    rate = publish_and_drain(settings[0], records)
                cpu = cpu_seconds(worker.proc.pid) - cpu0
            finally:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
                worker.stop()
    report(args, len(records), rate, cpu)


def report(args: argparse.Namespace, events: int, rate: float, cpu: float) -> None:
    collapsed = args.out.read_text()
    total, own, anywhere = tally(collapsed)
    print(
        f"{events} events at {rate:,.0f}/s: worker CPU {cpu / events * 1e6:,.0f} µs per event; "
        f"{total} samples on the CPU ({args.out})"
    )
    for title, ranking in (("by self", own), ("by total", anywhere)):
        print(f"\n{title}:\n{'self':>6} {'total':>6}  function (file)")
        for name, _n in ranking.most_common(args.top):
            print(f"{own[name] / total:>6.1%} {anywhere[name] / total:>6.1%}  {name}")
    print(
        "\nself samples by library: "
        + ", ".join(f"{lib} {n / total:.0%}" for lib, n in by_library(collapsed).most_common())
    )


if __name__ == "__main__":
    main()
