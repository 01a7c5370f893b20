"""Benchmark: one whole-process ``drift-check`` on the test lab against two OpenSSH baselines.

Run (as root, lab packages installed): ``python -m bench.onerun [--runs 15]``.

The lab is the tests' standard lab: two real ``sshd`` on loopback, each in front of its own
real Docker engine, images pulled from a real registry. Ten modules, five containers per host,
all matching (exit 0). Three commands are timed, alternating, in one run:

* ``platformctl drift-check``: the console script of a regular install of this checkout in
  its own venv (``bench/install.py``), whole process (start-up, imports, manifests, SSH,
  parse, compare, store, table).
* **batched OpenSSH**: the loop someone writes by hand to collect the same state the fastest
  way: one OpenSSH ``ssh`` per host, all hosts in parallel, each running platformctl's own
  remote script (so the remote work is the same) into a file. It parses, compares and stores
  nothing: it is the floor of collection.
* **obvious script**: one ``ssh host docker container inspect NAME`` per module, in a serial
  loop, output to files.

Prints the median, minimum and maximum wall time of each, and the ratios of the medians.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from bench.fleet import compose_labels
from bench.install import DEFAULT, installed, user_env
from tests.conftest import write_module
from tests.lab.topology import standard_lab

PER_HOST = 5
HOSTS = ("alpha", "beta")

BATCHED = r"""
# One ssh per host, in parallel, each running the remote script once.
cfg=$1 script=$2 out=$3; shift 3
for h in "$@"; do
  ssh -F "$cfg" "$h" sh -s < "$script" > "$out/$h.out" 2> "$out/$h.err" &
done
wait
"""

OBVIOUS = r"""
# One ssh per module, one after the other.
cfg=$1 out=$2; shift 2
for pair in "$@"; do
  h=${pair%%/*} c=${pair#*/}
  ssh -F "$cfg" "$h" docker container inspect "$c" > "$out/$c.json"
done
"""


def timed(cmd: list[str], expect: int = 0, cache: Path | None = None) -> float:
    env = user_env()
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != expect:
        raise SystemExit(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="runs of each command")
    parser.add_argument(
        "--serve", action="store_true", help="print the commands and keep the lab up until Ctrl-C"
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT, help="where to install platformctl")
    parser.add_argument(
        "--also",
        type=Path,
        default=None,
        help="another platformctl executable (e.g. an older release) timed the same way",
    )
    args = parser.parse_args()
    print(f"installing this checkout into {args.venv}...", flush=True)
    bin_dir = installed(args.venv)
    print("starting the standard lab...", flush=True)
    lab, images = standard_lab()
    try:
        refs = [images.honcho_306, images.web_10, images.web_11, images.honcho_303]
        root = lab.root / "platform"
        pairs = []
        for host in HOSTS:
            for i in range(PER_HOST):
                ref = refs[i % len(refs)]
                name = f"apps-svc{i}-1"
                lab.run_container(
                    lab.engines[host],
                    name,
                    ref,
                    labels=compose_labels(f"svc{i}"),
                )
                write_module(
                    root,
                    f"{host}-svc{i}",
                    {
                        "host": host,
                        "orchestrator": "docker-compose",
                        "compose_project": "apps",
                        "compose_service": f"svc{i}",
                        "image_observed": f"{ref}@{images.digests[ref]}",
                    },
                )
                pairs.append(f"{host}/{name}")
        from platformctl.collector.script import build_script

        script = lab.root / "remote.sh"
        script.write_text(build_script("docker"))
        out = lab.root / "out"
        out.mkdir()
        env_db = lab.root / "bench.db"
        commands = {
            "platformctl drift-check": [
                str(bin_dir / "platformctl"),
                "drift-check",
                "--root",
                str(root),
                "--ssh-config",
                str(lab.ssh_config),
                "--db",
                str(env_db),
            ],
            "batched OpenSSH (1 ssh per host, parallel)": [
                "bash",
                "-c",
                BATCHED,
                "batched",
                str(lab.ssh_config),
                str(script),
                str(out),
                *HOSTS,
            ],
            "obvious script (1 ssh per module, serial)": [
                "bash",
                "-c",
                OBVIOUS,
                "obvious",
                str(lab.ssh_config),
                str(out),
                *pairs,
            ],
        }
        if args.serve:
            for name, cmd in commands.items():
                print(f"{name}:\n  {shlex.join(cmd)}")
            print("lab up; Ctrl-C ends it", flush=True)
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return
        if args.also:
            theirs = [str(args.also), *commands["platformctl drift-check"][1:]]
            theirs[theirs.index("--db") + 1] = str(lab.root / "also.db")
            commands[f"{args.also} drift-check"] = theirs
        # platformctl's caches (parsed YAML, ssh -G answers): kept between runs as a user's are,
        # and emptied before every run of the "cold" row (the first run on a new checkout or
        # after an upgrade).
        cold = "platformctl drift-check, caches empty"
        commands[cold] = commands["platformctl drift-check"]
        caches = {name: lab.root / "cache" / str(i) for i, name in enumerate(commands)}
        for name, cmd in commands.items():  # warm caches once; not counted
            timed(cmd, cache=caches[name])
        walls: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                if name == cold:
                    shutil.rmtree(caches[name], ignore_errors=True)
                walls[name].append(timed(cmd, cache=caches[name]))
        print(
            f"\n{args.runs} alternating runs, {len(HOSTS)} hosts, {len(pairs)} modules, "
            f"load average at the end: {os.getloadavg()[0]:.2f}\n"
        )
        print("| command | median | min | max |")
        print("|---|---|---|---|")
        medians = {}
        for name, values in walls.items():
            medians[name] = statistics.median(values)
            print(f"| {name} | {medians[name]:.3f} s | {min(values):.3f} s | {max(values):.3f} s |")
        ours, batched, obvious = list(medians.values())[:3]
        print(f"\nplatformctl / batched OpenSSH: {ours / batched:.2f}x (target <= 1.25x)")
        print(f"obvious script / platformctl: {obvious / ours:.2f}x (target >= 5x)")
    finally:
        lab.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main()
