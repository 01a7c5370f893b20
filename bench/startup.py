"""Benchmark: wall time of ``platformctl --version`` (target ≤ 0.3 s, bench/README.md).

Run: ``python -m bench.startup [--runs N]``. Prints the median and spread over N runs of the
console script of a regular install of this checkout (``bench/install.py``), and the same for
``python -c pass`` in that install's venv, measured in the same run, so the interpreter's own
start-up is visible beside ours.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from bench.install import DEFAULT, installed, user_env


def timed(cmd: list[str], runs: int) -> list[float]:
    """Wall times of ``runs`` runs of ``cmd``, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=user_env(), cwd="/")
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--venv", type=Path, default=DEFAULT, help="where to install platformctl")
    args = parser.parse_args()
    bin_folder = installed(args.venv)
    script = str(bin_folder / "platformctl")
    timed([script, "--version"], 3)  # warm the page cache
    ours = timed([script, "--version"], args.runs)
    bare = timed([str(bin_folder / "python"), "-c", "pass"], args.runs)
    print(
        f"platformctl --version: median {statistics.median(ours) * 1000:.0f} ms "
        f"(min {min(ours) * 1000:.0f}, max {max(ours) * 1000:.0f}) over {args.runs} runs"
    )
    print(f"python -c pass:        median {statistics.median(bare) * 1000:.0f} ms")
    print("target: <= 300 ms:", "met" if statistics.median(ours) <= 0.3 else "NOT met")


if __name__ == "__main__":
    main()
