"""`touchstream attribute --paths` on synthetic path files: time and peak memory.

    python bench/paths.py [--sizes 100000 1000000]

Writes a CSV of N distinct synthetic paths (1-8 channels from the simulator's
taxonomy, conversion/null counts drawn per path), then runs the real CLI on it
in a child process and reports wall time and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stream.devtools.simulate import NAMES, WEIGHTS


def write_paths(path: Path, rows: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    seen: set[str] = set()
    with path.open("w") as out:
        out.write("path,total_conversions,total_conversion_value,total_null\n")
        while len(seen) < rows:
            text = " > ".join(rng.choices(NAMES, WEIGHTS, k=rng.randint(1, 8)))
            if text in seen:
                continue
            seen.add(text)
            conversions = rng.randint(0, 5)
            out.write(f"{text},{conversions},{conversions * rng.randint(20, 400)},{rng.randint(0, 40)}\n")


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
    args = parser.parse_args()
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
