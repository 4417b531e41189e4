"""The benchmark's printed report: the contenders, the ratios, latency, Redis memory, and
the per-unit figures capacity planning starts from (docs/scaling.md)."""

from __future__ import annotations

from typing import Any

COMPARED = ("ceiling", "floor", "naive")


def report(r: dict[str, Any]) -> None:
    """Print every table the results `r` allow, in order."""
    print_contenders(r)
    print_ratios(r)
    print_latency(r)
    if "scale_out" in r:
        print_memory(r["scale_out"][0]["memory"])
        print_capacity(r, r["scale_out"][0])
    if "replicas" in r:
        print_replicas(r["replicas"])


def print_contenders(r: dict[str, Any]) -> None:
    print(f"\n{'contender':<34}{'events/s':>10}")
    for name in COMPARED:
        if name in r:
            print(f"{name:<34}{r[name]:>10,.0f}")
    runs = [(f"touchstream, {run['workers']} worker(s)", run) for run in r.get("scale_out", [])]
    if "credits_off" in r:
        runs.append(("touchstream, credit rows off", r["credits_off"]))
    runs += [(f"touchstream, redis replicas {run['redis_replicas']}", run) for run in r.get("replicas", [])]
    for label, run in runs:
        print(f"{label:<34}{run['events_per_s']:>10,.0f}   {run_line(run, r['cores'])}")


def run_line(run: dict[str, Any], cores: int) -> str:
    """Per worker, per core, and the CPU µs per event of the workers and of Redis."""
    n = run["workers"]
    replicas = run.get("redis_replica_cpu_s_per_100k", 0.0)
    return (
        f"per worker {run['events_per_s'] / n:,.0f}"
        f"   per core {run['events_per_s'] / min(n, cores):,.0f}"
        f"   cpu us/event: worker {run['worker_cpu_s_per_100k'] * 10:.0f},"
        f" redis {run['redis_cpu_s_per_100k'] * 10:.0f}"
        + (f" (+ replicas {replicas * 10:.0f})" if replicas else "")
    )


def print_ratios(r: dict[str, Any]) -> None:
    ts = r.get("touchstream")
    others = [name for name in COMPARED if name in r]
    if ts and others:
        print("touchstream / " + "   ".join(f"{name} {ts / r[name]:.3f}" for name in others))


def print_latency(r: dict[str, Any]) -> None:
    for label, lat in r.get("latency", {}).items():
        figures = (
            f"p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms " if lat["p50_ms"] is not None else ""
        )
        print(
            f"latency at {label} rate ({lat['rate']:,.0f}/s): {figures}"
            f"({lat['conversions']} conversions, {lat['missing']} missing)"
        )


def print_memory(mem: dict[str, Any]) -> None:
    ten = mem["by_touches"].get(10)
    print(
        f"redis per person: {mem['bytes_per_person']:,.0f} B all keys; "
        f"state of a 10-touch journey {ten:,.0f} B"
        if ten
        else "(no 10-touch journey)"
    )
    print("redis bytes by kind: " + ", ".join(f"{k} {v:,}" for k, v in mem["bytes_by_kind"].items()))
    records = mem["conversion_bytes_by_touches"]
    print(
        f"redis per stored conversion ({mem['conversions']:,}, MEMORY USAGE): "
        + ", ".join(f"{n} touches {b:,.0f} B" for n, b in records.items() if n in (1, 3, 5, 10, 20))
    )


def capacity_lines(r: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """The per-unit figures of one run: worker and Redis CPU per event, Redis bytes per
    person, Kafka bytes per event."""
    events, mem = r["events"], run["memory"]
    worker_s = run["worker_cpu_s_per_100k"] / 100_000
    redis_s = run["redis_cpu_s_per_100k"] / 100_000
    where = (
        f"Redis Cluster, {r['redis_primaries']} primaries" if r.get("redis_cluster") else "one redis-server"
    )
    lines = [
        f"capacity, from {run['workers']} worker(s) on {where}, {events:,} events,"
        f" {mem['persons']:,} persons:",
        f"  worker: {worker_s * 1e6:,.0f} us CPU per event = {1 / worker_s:,.0f} events/s per worker core",
        f"  redis CPU: {run['redis_cpu_s_per_100k']:.2f} s per 100k events on the primaries"
        f" ({redis_s * 1e6:,.1f} us/event = {1 / redis_s:,.0f} events/s per Redis core)" + _replica_cpu(run),
        f"  redis memory: {mem['bytes_per_person']:,.0f} B per person, all its keys"
        f" ({mem['state_bytes_per_person']:,.0f} B without stored conversions;"
        f" {mem['conversion_bytes'] / max(1, mem['conversions']):,.0f} B per stored conversion,"
        f" {mem['conversions'] / max(1, mem['persons']):.2f} per person)",
        f"  redis shared: {mem['shared_bytes']:,} B, of which per partition "
        + ", ".join(
            f"{name} {size:,}" for name, size in sorted(mem["aggregate_bytes"].items(), key=lambda kv: -kv[1])
        )
        + f" (report counters of {mem['report_days']} days)",
    ]
    if "kafka_bytes" in run:
        sizes = sorted(((t, b) for t, b in run["kafka_bytes"].items() if b), key=lambda kv: -kv[1])
        lines.append(
            f"  kafka: {sum(run['kafka_bytes'].values()) / events:,.0f} B on disk per input event"
            " (one replica): " + ", ".join(f"{topic} {size / events:,.0f}" for topic, size in sizes)
        )
    return lines


def _replica_cpu(run: dict[str, Any]) -> str:
    replicas = run.get("redis_replica_cpu_s_per_100k", 0.0)
    return f"; replicas {replicas:.2f} s per 100k" if replicas else ""


def print_capacity(r: dict[str, Any], run: dict[str, Any]) -> None:
    print("\n".join(capacity_lines(r, run)))


def print_replicas(runs: list[dict[str, Any]]) -> None:
    """Each TOUCHSTREAM_REDIS_REPLICAS count's events/s and worker CPU, and their ratios to the
    first count's."""
    first = runs[0]
    for run in runs:
        print(
            f"redis replicas {run['redis_replicas']}: {run['events_per_s']:,.0f} events/s,"
            f" worker {run['worker_cpu_s_per_100k'] * 10:.0f} us/event,"
            f" redis {run['redis_cpu_s_per_100k'] * 10:.0f} us/event"
            + ("" if run is first else ratios(run, first))
        )


def ratios(run: dict[str, Any], first: dict[str, Any]) -> str:
    events = run["events_per_s"] / first["events_per_s"]
    cpu = run["worker_cpu_s_per_100k"] / first["worker_cpu_s_per_100k"]
    return f"; vs replicas {first['redis_replicas']}: events/s x{events:.3f}, worker CPU/event x{cpu:.3f}"
