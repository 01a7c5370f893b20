"""Benchmark: wall time of ``platformctl --version`` (target ≤ 0.3 s, bench/README.md).

Run: ``python -m bench.startup [--runs N]``. Prints the median and spread over N runs of the
installed console script, and the same for ``python -c pass`` measured in the same run, so the
interpreter's own start-up is visible beside ours.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], runs: int) -> list[float]:
    """Wall times of ``runs`` runs of ``cmd``, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    script = shutil.which("platformctl")
    if script is None:
        sys.exit("platformctl is not installed (run scripts/setup)")
    timed([script, "--version"], 3)  # warm the page cache
    ours = timed([script, "--version"], args.runs)
    bare = timed([sys.executable, "-c", "pass"], args.runs)
    print(
        f"platformctl --version: median {statistics.median(ours) * 1000:.0f} ms "
        f"(min {min(ours) * 1000:.0f}, max {max(ours) * 1000:.0f}) over {args.runs} runs"
    )
    print(f"python -c pass:        median {statistics.median(bare) * 1000:.0f} ms")
    print("target: <= 300 ms:", "met" if statistics.median(ours) <= 0.3 else "NOT met")


if __name__ == "__main__":
    main()
