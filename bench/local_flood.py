"""Benchmark: peak memory of a local run whose docker floods stdout (target ≤ ~200 MB).

Run: ``python -m bench.local_flood [--runs N]``. Each run is ``platformctl drift-check`` on a
one-module repository whose host is ``localhost``, with a ``--docker-command`` that answers
``docker info`` with an endless stream (``yes``). The local transport must stop reading at the
64 MiB output cap and kill the stream; before it read while buffering, such a run grew without
bound. Peak RSS is platformctl's own maximum resident set (and its waited-for children's),
from ``wait4``. No Docker daemon, SSH or root is needed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FLOOD = '#!/bin/sh\nif [ "$1" = info ]; then exec yes flood-flood-flood-flood; fi\nexit 1\n'
MANIFEST = """\
spec:
  runtime:
    host: localhost
    orchestrator: docker
    container: web
    image_observed: nginx:1.25
"""


@dataclass(frozen=True)
class FloodRun:
    """One measured run: exit code, stdout, stderr, wall seconds and peak RSS in bytes."""

    code: int
    out: str
    err: str
    seconds: float
    peak_rss: int


def flood_run(workdir: Path, *extra: str, command_timeout: float = 60) -> FloodRun:
    """Run ``platformctl drift-check`` against a flooding local docker in ``workdir``."""
    docker = workdir / "flooding-docker"
    docker.write_text(FLOOD)
    docker.chmod(0o755)
    manifest = workdir / "platform" / "modules" / "web" / "module.yaml"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(MANIFEST)
    args = [
        sys.executable,
        "-m",
        "platformctl",
        "drift-check",
        "--root",
        str(workdir / "platform"),
        "--db",
        str(workdir / "store.db"),
        "--docker-command",
        str(docker),
        "--command-timeout",
        str(command_timeout),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "PLATFORMCTL_DOCKER_COMMAND"}
    out_path, err_path, rss_path = workdir / "stdout", workdir / "stderr", workdir / "maxrss"
    start = time.monotonic()
    # Measured from a small runner process, not from here: a child's peak RSS starts from its
    # parent's size at fork, so a child of a big test process would report that process.
    code = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(out_path), str(err_path), str(rss_path), *args],
        env=env,
    ).returncode
    seconds = time.monotonic() - start
    return FloodRun(
        code,
        out_path.read_text(),
        err_path.read_text(),
        seconds,
        int(rss_path.read_text()) * 1024,  # kilobytes on Linux
    )


# argv: stdout file, stderr file, file for the peak RSS (KiB), then the command to measure.
_RUNNER = """\
import os, subprocess, sys
out, err, rss, *command = sys.argv[1:]
with open(out, "wb") as o, open(err, "wb") as e:
    proc = subprocess.Popen(command, stdout=o, stderr=e)
    # wait4 rather than Popen.wait: it also returns the child's resource usage.
    _, status, usage = os.wait4(proc.pid, 0)
with open(rss, "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="pctl-flood-") as folder:
            runs.append(flood_run(Path(folder)))
    peak = [r.peak_rss / 1e6 for r in runs]
    wall = [r.seconds for r in runs]
    print(f"exit codes: {sorted({r.code for r in runs})}")
    print(f"reason: {next(ln for ln in runs[0].out.splitlines() if 'exceeds' in ln).strip()}")
    print(
        f"peak RSS: median {statistics.median(peak):.0f} MB "
        f"(min {min(peak):.0f}, max {max(peak):.0f}) over {args.runs} runs"
    )
    print(f"wall: median {statistics.median(wall):.2f} s")
    print("target: <= 200 MB:", "met" if max(peak) <= 200 else "NOT met")


if __name__ == "__main__":
    main()
