"""The benchmark: one workload, one broker, one Redis, every contender side by side.

    python -m bench.suite [--customers 20000] [--json bench-results.json]     (make bench)
    python -m bench.suite --only touchstream --workers 1     (one contender; see --help)
    python -m bench.suite --redis-cluster --only touchstream,replicas --workers 1

The simulator's events (~10 per customer: interactions, conversions, a few identifies,
`bench.workload`) are published once to a raw topic of 8 partitions; then, one after the
other on that same topic (`bench.contenders`):

1. ceiling    a bare aiokafka consumer: getmany + orjson, one small produce per conversion
2. floor      an empty Faust agent: Faust's own per-event cost
3. naive      a Faust agent with one Redis GET and SET per event (the usual first version)
4. touchstream one `touchstream worker` process, full state; then 2 and 4
5. credits-off one worker with TOUCHSTREAM_CREDIT_ROWS=off: what the flat credit rows cost
6. replicas   (Redis Cluster only) one worker with TOUCHSTREAM_REDIS_REPLICAS=0, then =1
7. latency    conversion produced -> attribution consumed, at the maximum and half of it
              (`bench.latency`)

`--redis-cluster` starts a local Redis Cluster (3 primaries, 3 replicas) instead of one
redis-server (naive, which speaks to one server, is left out). Throughput of the Faust apps
is read from their consumer group (`bench.drain`). Prints the tables, the ratios and the
per-unit figures of capacity planning (`bench.report`), and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.contenders import Stage, base_settings, ceiling, fresh, run_app, run_replicas, run_touchstream
from bench.latency import run_latency
from bench.redis_nodes import connect
from bench.report import report
from bench.workload import PARTITIONS, workload
from stream.adapters.kafka.clients import produce
from stream.adapters.kafka.topics import ensure_topics
from stream.core.topics import RAW
from stream.devtools.services import Services, started_services

CONTENDERS = ("ceiling", "floor", "naive", "touchstream", "credits-off", "replicas", "latency")
SINGLE_ONLY = {"naive"}  # speaks to one redis-server
CLUSTER_ONLY = {"replicas"}  # waits for replicas, which one redis-server has not


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.suite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts of the scale-out runs")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--latency-rates",
        default="",
        help="also measure latency at these fixed rates (events/s, comma separated)",
    )
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--only", help=f"measure only these, comma separated, of {','.join(CONTENDERS)}")
    parser.add_argument(
        "--max-rate", type=float, help="latency without the touchstream run: its maximum rate (events/s)"
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a local Redis Cluster (3 primaries, 3 replicas) instead of one redis-server "
        "(REDIS_URL, if set, must name a Redis Cluster)",
    )
    args = parser.parse_args(argv)
    unfit = SINGLE_ONLY if args.redis_cluster else CLUSTER_ONLY
    args.only = set(args.only.split(",")) if args.only else set(CONTENDERS) - unfit
    if unknown := args.only - set(CONTENDERS):
        parser.error(f"--only: unknown {','.join(sorted(unknown))}; choose among {','.join(CONTENDERS)}")
    if args.only & CLUSTER_ONLY and not args.redis_cluster:
        parser.error("--only replicas needs --redis-cluster (one redis-server has no replica)")
    if args.only & SINGLE_ONLY and args.redis_cluster:
        parser.error("--only naive speaks to one redis-server: not with --redis-cluster")
    if "latency" in args.only and "touchstream" not in args.only and not args.max_rate:
        parser.error("latency without touchstream needs --max-rate")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="touchstream-bench-") as tmp:  # Kafka data: gigabytes
        workdir = Path(tmp)
        with started_services(workdir, redis_cluster=args.redis_cluster) as services:
            stage = make_stage(args, services, workdir)
            print(
                f"workload: {len(stage.records)} events, {args.customers} customers, {PARTITIONS} partitions",
                flush=True,
            )
            try:
                results = measure(args, stage, services.redis_url)
            finally:
                stage.redis.close()
    args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    report(results)


def make_stage(args: argparse.Namespace, services: Services, workdir: Path) -> Stage:
    """The workload, the settings every run starts from and the Redis nodes."""
    cluster = {"redis_cluster": True} if args.redis_cluster else {}
    base = base_settings(services.bootstrap, services.redis_url, web_port=16090, **cluster)
    redis = connect(services.redis_url, args.redis_cluster)
    return Stage(base, workload(args.customers), workdir, redis, services.kafka_data)


def measure(args: argparse.Namespace, stage: Stage, redis_url: str) -> dict[str, Any]:
    """Run the contenders `args.only` names, in order; their results."""
    records = stage.records
    results: dict[str, Any] = {
        "events": len(records),
        "customers": args.customers,
        "cores": os.cpu_count(),
        "redis_cluster": args.redis_cluster,
        "redis_primaries": len(stage.redis.primaries),
    }
    if args.only & {"ceiling", "floor", "naive"}:
        results |= compare(args.only, stage, redis_url)
    if "touchstream" in args.only:
        results["scale_out"] = scale_out(stage, [int(w) for w in args.workers.split(",")])
        results["touchstream"] = results["scale_out"][0]["events_per_s"]
    if "credits-off" in args.only:
        results["credits_off"] = run_touchstream(stage, 1, credit_rows="off")
        print(f"credits off: {results['credits_off']['events_per_s']:,.0f}/s", flush=True)
    if "replicas" in args.only:
        results["replicas"] = run_replicas(stage)
        print(
            "replicas: " + ", ".join(f"{r['events_per_s']:,.0f}/s" for r in results["replicas"]), flush=True
        )
    if "latency" in args.only:
        results["latency"] = latencies(args, stage, results.get("touchstream") or args.max_rate)
    return results


def compare(only: set[str], stage: Stage, redis_url: str) -> dict[str, float]:
    """The comparison contenders, on one shared topic the workload is published to once."""
    (shared,) = fresh(stage.base, "cmp")
    bootstrap, topic, total = shared.kafka_bootstrap_servers, shared.topic(RAW), len(stage.records)
    asyncio.run(ensure_topics(shared))
    asyncio.run(produce(bootstrap, topic, stage.records))
    rates = {}
    if "ceiling" in only:
        rates["ceiling"] = asyncio.run(ceiling(bootstrap, topic, total))
        print(f"ceiling {rates['ceiling']:,.0f}/s", flush=True)
    for kind in ("floor", "naive"):
        if kind in only:
            rates[kind] = run_app(kind, bootstrap, redis_url, topic, total, stage.workdir)
            print(f"{kind} {rates[kind]:,.0f}/s", flush=True)
    return rates


def scale_out(stage: Stage, counts: list[int]) -> list[dict[str, Any]]:
    """Touchstream with each worker count; the first run also measures Redis memory."""
    runs = []
    for i, n in enumerate(counts):
        runs.append(run_touchstream(stage, n, memory=i == 0))
        print(f"touchstream x{n}: {runs[-1]['events_per_s']:,.0f}/s", flush=True)
    return runs


def latencies(args: argparse.Namespace, stage: Stage, top: float) -> dict[str, Any]:
    """Latency at the maximum rate, at half of it, and at each of `--latency-rates`."""
    rates = [
        ("max", top),
        ("half", top / 2),
        *((f"{r}/s", float(r)) for r in args.latency_rates.split(",") if r),
    ]
    return {
        label: run_latency(stage.base, stage.records, rate, args.latency_seconds, stage.workdir, stage.redis)
        for label, rate in rates
    }


if __name__ == "__main__":
    main()
