"""Measurement: where platformctl's own CPU goes in one fleet run, phase by phase.

Run (as root, lab packages installed)::

    python -m bench.phases [--hosts 500] [--runs 3] [--also VENV]

The fleet of ``bench.fleet`` (real sshd on loopback addresses, the replayed engine output of
20 containers, 20 modules per host, no added latency), with platformctl's caches warm as a
scheduled run finds them. Each run is the installed console entry point with the boundaries
of its phases marked (the process's CPU and wall clock at each), and the figures are the
medians over ``--runs``:

* start-up: the interpreter, click and our modules, until the manifests are read;
* manifests: reading and checking every manifest and compose file (``_load``);
* collection: from there until the last host has answered (opening the store, the SSH
  connections, parsing each host's output);
* saving, judging, rendering: the snapshot's write, the comparison, the table;
* the rest: until the process leaves.

The last row is the run's wall time (from the interpreter's start of our code to the exit),
the one before it the process's CPU in all; both also give the runs' minimum and maximum per
host, in brackets.

Manifests, judging and rendering scale with modules; collection with hosts. ``--also``
measures another install (e.g. the previous round's, from ``bench/install.py``) in the same
loop, alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench import fleet
from bench.install import DEFAULT, installed, run_installed
from tests.lab.lab import Lab

# Marks the phase boundaries by wrapping the functions that begin and end them, then runs the
# console entry point; at exit, writes [label, CPU seconds, wall seconds] per mark to argv[1].
MARKED = """
import json, os, sys, time
out = sys.argv.pop(1)
marks = [("start", time.process_time(), time.perf_counter())]
def mark(label):
    marks.append((label, time.process_time(), time.perf_counter()))
def around(owner, name, label):
    inner = getattr(owner, name)
    def wrapped(*args, **kwargs):
        mark(label + " begins")
        try:
            return inner(*args, **kwargs)
        finally:
            mark(label + " ends")
    setattr(owner, name, wrapped)
from platformctl import api, cli
from platformctl.snapshots import store
import platformctl.differ as differ
import platformctl.output.drift_check as rendering
around(cli, "_load", "manifests")
around(api.Collecting, "wait", "collection")
around(store.Store, "save", "saving")
around(differ, "diff", "judging")
around(rendering, "render_table", "rendering")
leave = os._exit
def reported(code):
    mark("exit")
    with open(out, "w") as fh:
        json.dump(marks, fh)
    leave(code)
os._exit = reported
cli.console()
"""

PHASES = [
    ("start-up", "start", "manifests begins"),
    ("manifests", "manifests begins", "manifests ends"),
    ("collection", "manifests ends", "collection ends"),
    ("saving", "saving begins", "saving ends"),
    ("judging", "judging begins", "judging ends"),
    ("rendering", "rendering begins", "rendering ends"),
    ("the rest", "rendering ends", "exit"),
]


def run_marked(python: str, cmd: list[str], folder: Path, cache: Path) -> dict[str, float]:
    """CPU seconds per phase of one run, with platformctl's caches in ``cache``."""
    out = folder / "marks.json"
    # Each install its own caches: the parsed-YAML cache is keyed on the install's PyYAML
    # files, so two installs sharing one would empty it for each other on every run.
    proc = run_installed(python, ["-c", MARKED, str(out), *cmd], cache)
    if proc.returncode != 0:
        raise SystemExit(f"drift-check exited {proc.returncode}: {proc.stderr.decode()[-600:]}")
    marks = json.loads(out.read_text())
    cpu = {label: c for label, c, _ in marks}
    wall = {label: w for label, _, w in marks}
    return {name: cpu[end] - cpu[begin] for name, begin, end in PHASES} | {
        "total": cpu["exit"],
        "wall": wall["exit"] - wall["start"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-sshd", type=int, default=10, help="addresses per sshd process")
    parser.add_argument("--venv", type=Path, default=DEFAULT, help="where to install platformctl")
    parser.add_argument("--also", type=Path, default=None, help="another install's venv")
    args = parser.parse_args()
    installs = {"this checkout": str(installed(args.venv) / "python")}
    if args.also:
        installs[f"also ({args.also})"] = str(args.also / "bin" / "python")
    lab = Lab()
    try:
        _, modules = fleet.capture(lab, lab.root / "capture")
        docker = str(lab.root / "capture" / "docker")
        hosts = fleet.start_fleet(lab, args.hosts, args.per_sshd)
        config = lab.root / "ssh_config"
        fleet.ssh_config(lab, config, {h.alias: (h.address, h.port) for h in hosts})
        root = lab.root / "platform"
        fleet.write_platform(root, [h.alias for h in hosts], modules)
        cmd = [
            "drift-check", "--root", str(root), "--ssh-config", str(config),
            "--db", str(lab.root / "snapshots.db"), "--docker-command", docker,
        ]  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in installs}
        caches = {name: lab.root / f"cache{i}" for i, name in enumerate(installs)}
        for name, python in installs.items():
            run_marked(python, cmd, lab.root, caches[name])  # warms the caches; not counted
        for _ in range(args.runs):  # alternating, so every install sees the same machine
            for name, python in installs.items():
                runs[name].append(run_marked(python, cmd, lab.root, caches[name]))
        print(f"{args.hosts} hosts × {len(modules)} modules, {args.runs} runs, medians\n")
        names = list(installs)
        print("| phase | " + " | ".join(f"{n}: CPU | per host" for n in names) + " |")
        print("|---|" + "---|---|" * len(names))
        for phase in [p for p, _, _ in PHASES] + ["total", "wall"]:
            cells = []
            for name in names:
                values = [r[phase] for r in runs[name]]
                median = statistics.median(values)
                cell = f"{median:.2f} s | {median * 1000 / args.hosts:.2f} ms"
                if phase in ("total", "wall"):  # the spread, per host, where it is quoted
                    low, high = (v * 1000 / args.hosts for v in (min(values), max(values)))
                    cell += f" ({low:.2f}–{high:.2f})"
                cells.append(cell)
            print(f"| {phase} | " + " | ".join(cells) + " |")
    finally:
        lab.stop()


if __name__ == "__main__":
    sys.exit(main())
