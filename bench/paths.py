"""`touchstream attribute --paths` on synthetic path files: time and peak memory.

    python bench/paths.py [--sizes 100000 1000000]
    python -m bench.paths --write paths.csv --rows 10000

Writes a CSV of N distinct synthetic paths (1-8 channels from the simulator's
taxonomy; each path's journeys convert more often with the channels that lift
conversion, and a conversion's value follows the path's last channel), then runs
the real CLI on it in a child process and reports wall time and the child's peak
RSS. `--write` only writes the file.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stream.devtools.simulate import NAMES, WEIGHTS

# how much a channel on a path lifts its conversion rate, and the mean value of a conversion
# whose last touch it is (call centres close big deals; display rarely converts)
LIFT = dict(zip(NAMES, (1.3, 1.1, 0.8, 0.7, 1.6, 0.6, 0.7, 1.0, 1.2, 1.4, 1.1, 2.0, 1.5), strict=True))
VALUE = dict(zip(NAMES, (120, 100, 70, 60, 80, 60, 70, 90, 110, 90, 100, 300, 150), strict=True))


def write_paths(path: Path, rows: int, seed: int = 3) -> None:
    """`rows` distinct paths, each with the conversions, value and nulls of 1-40 journeys."""
    rng = random.Random(seed)
    seen: set[str] = set()
    with path.open("w") as out:
        out.write("path,total_conversions,total_conversion_value,total_null\n")
        while len(seen) < rows:
            channels = rng.choices(NAMES, WEIGHTS, k=rng.randint(1, 8))
            text = " > ".join(channels)
            if text in seen:
                continue
            seen.add(text)
            rate = min(0.9, 0.05 * math.prod(LIFT[c] for c in set(channels)) * (1 + 0.15 * len(channels)))
            journeys = rng.randint(1, 40)
            conversions = sum(rng.random() < rate for _ in range(journeys))
            value = sum(rng.lognormvariate(math.log(VALUE[channels[-1]]), 0.5) for _ in range(conversions))
            out.write(f"{text},{conversions},{value:.2f},{journeys - conversions}\n")


def run(csv: Path) -> tuple[float, float]:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "stream.cli", "attribute", "--paths", str(csv), "--format", "json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak_mib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--write", type=Path, help="only write a paths file of --rows paths here")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    if args.write:
        write_paths(args.write, args.rows)
        return
    with tempfile.TemporaryDirectory(prefix="touchstream-paths-") as tmp:  # path files: hundreds of MiB
        workdir = Path(tmp)
        print(f"{'paths':>10} {'file MiB':>9} {'seconds':>8} {'paths/s':>9} {'peak RSS MiB':>13}")
        for size in args.sizes:
            csv = workdir / f"paths-{size}.csv"
            write_paths(csv, size)
            elapsed, peak = run(csv)  # ru_maxrss of children is the max over all children so far
            mib = csv.stat().st_size / 2**20
            print(f"{size:>10,} {mib:>9.1f} {elapsed:>8.1f} {size / elapsed:>9,.0f} {peak:>13.0f}")


if __name__ == "__main__":
    main()
