"""Benchmark: drift-check across a fleet of real sshd hosts, against the obvious script, a
batched OpenSSH loop and (optionally) Ansible.

Run (as root, lab packages installed)::

    python -m bench.fleet [--hosts 1,10,50,500] [--latency 0,50] [--runs 3]
                          [--baseline-limit N] [--ansible PATH] [--jobs-sweep 16,32,64,128]
                          [--pairs 50 [--pair-runs 9] [--also VENV]]

* Every host is its own loopback address (127.0.x.y) served by a real ``sshd``; one sshd
  process listens on up to ``--per-sshd`` addresses (500 sshd processes would measure this
  machine's process table, not the fan-out). platformctl sees one host per address.
* The remote ``docker`` is a stand-in that replays output captured, in the same run, from a real
  engine running the 20 containers (compose labels, registry digests). Why: this machine has
  2 cores; 500 hosts running the real docker CLI (4 invocations each, ~40 ms of CPU apiece)
  against one shared engine would measure that engine and this machine's CPU, not the
  fan-out — real hosts each bring their own engine and CPU.
* Added latency: a userspace relay (``tests.lab.relay``) in front of every host holds each
  chunk back by half the round trip in each direction (this kernel has no netem). Points
  above ``--relay-max`` hosts run without it: one relay process for hundreds of hosts would
  be the bottleneck on two cores.
* In the same run, for every point:
  - the obvious script: a serial loop of OpenSSH ``ssh host docker container inspect NAME``
    once per module; ``--baseline-limit`` caps how many of its calls are timed, the rest is
    extrapolated linearly (a serial loop of identical calls) and the table says so;
  - batched OpenSSH: one ``ssh host sh -s < script`` per host, all hosts at once, running
    platformctl's own remote script (the floor of collecting, with nothing parsed or stored);
  - Ansible ad-hoc, with ``--ansible PATH`` (an ``ansible`` installed in its own venv, never a
    dependency of ours): ``-m shell`` of the same script, pipelining on, forks = hosts, up to
    ``--ansible-max`` hosts (each fork is a Python process; 500 would need gigabytes).
* ``--pairs N`` times 1 host and N hosts alternately at each relayed latency and reports
  the ratio of each pair: the points above are minutes apart, and this machine's speed drifts.
  With ``--also VENV`` another install (e.g. the previous round's) takes its turn in the same
  loop, pair after pair, and gets a row of its own.
* platformctl's CPU is split: its own process, and the ``ssh -G`` children it runs to resolve
  hosts. Peak RSS is its own process's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.install import DEFAULT, installed, run_installed
from tests.lab.lab import Lab, free_port

CONTAINERS = 20

# The stand-in costs one `cat` per docker call: the sshd, the shell and the replay of 20 hosts'
# worth of docker all share this machine's two cores, so it must stay cheap to measure the
# fan-out rather than the stand-in.
REPLAY = """#!/bin/sh
# Replays what the real docker CLI printed for the same call (captured by bench.fleet).
d={capture}
case "$1 $2" in
  "info --format") exec cat "$d/info" ;;
  "container ls") exec cat "$d/ls" ;;
  "image inspect") exec cat "$d/images" ;;
  "container inspect")
    case "$4" in
      "{{{{.Image}}}}") exec cat "$d/image-ids" ;;  # asked by builds before 2026-12-07
      "") exec cat "$d/inspect-$3" ;;
      *) exec cat "$d/containers" ;;
    esac ;;
esac
echo "no capture for: $*" >&2
exit 1
"""


# Runs platformctl's own entry point in this interpreter and, at exit, writes the process's
# own CPU, its children's (ssh -G) and its peak RSS to the file named by argv[1]. The console
# entry point leaves through os._exit (an older release through the interpreter's exit).
MEASURED = """
import atexit, json, os, resource, sys
out = sys.argv.pop(1)
def report():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as fh:
        json.dump([me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime,
                   me.ru_maxrss / 1024], fh)
atexit.register(report)
leave = os._exit
def reported(code):
    report()
    leave(code)
os._exit = reported
from platformctl import cli
getattr(cli, "console", cli.main)()
"""


@dataclass
class Measure:
    wall: float
    cpu: float
    """platformctl's own process."""
    children_cpu: float
    """The ``ssh -G`` it ran."""
    rss_mb: float
    code: int
    machine_busy: float = 0.0
    """CPU seconds the whole machine spent busy during the run (all cores, /proc/stat)."""
    sshd: float = 0.0
    """The lab's sshd processes and their finished sessions (shell, stand-in included)."""
    relay: float = 0.0
    """The latency relay."""


def machine_busy() -> float:
    """CPU seconds this machine has spent busy since boot, all cores (not idle, not iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, children: bool) -> float:
    """CPU seconds of process ``pid`` so far, with its finished (waited-for) children's when
    ``children``."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3; utime, stime, cutime, cstime are 14 to 17.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class LabCpu:
    """The lab's own processes, whose CPU the machine-busy table separates from the rest."""

    sshd: list[int]
    relay: int | None = None

    def read(self) -> tuple[float, float]:
        sshd = sum(process_cpu(pid, children=True) for pid in self.sshd)
        return sshd, process_cpu(self.relay, children=False) if self.relay else 0.0


PYTHON = sys.executable
"""The interpreter of the platformctl install under test (main() sets it)."""


def run_measured(
    cmd: list[str],
    folder: Path,
    lab_cpu: LabCpu | None = None,
    python: str | None = None,
    cache: str = "cache",
) -> Measure:
    """Run platformctl with ``cmd`` (its arguments) under :data:`MEASURED`, with the install
    of ``python`` (default :data:`PYTHON`) and its caches in ``folder / cache``: each install
    needs its own, as the parsed-YAML cache is emptied for another install's PyYAML."""
    out = folder / "rusage.json"
    lab_before = lab_cpu.read() if lab_cpu else (0.0, 0.0)
    busy = machine_busy()
    start = time.perf_counter()
    # platformctl's caches (parsed YAML, ssh -G answers) live in the lab, kept between runs as
    # a user's are (each point makes one untimed run first, so the timed ones find them warm).
    proc = run_installed(python or PYTHON, ["-c", MEASURED, str(out), *cmd], folder / cache)
    wall = time.perf_counter() - start
    busy = machine_busy() - busy
    time.sleep(0.05)  # the sshd reap their last sessions
    lab_after = lab_cpu.read() if lab_cpu else (0.0, 0.0)
    sshd, relay = (after - before for after, before in zip(lab_after, lab_before, strict=True))
    cpu, children, rss = json.loads(out.read_text())
    if proc.returncode != 0:
        print(proc.stderr.decode()[-600:], file=sys.stderr)
    return Measure(wall, cpu, children, rss, proc.returncode, busy, sshd, relay)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{cmd[:3]} exited {proc.returncode}: {proc.stderr.decode()[-600:]}"
            f"{proc.stdout.decode()[-600:]}"
        )
    return wall


def compose_labels(service: str) -> dict[str, str]:
    """The labels docker compose gives the first container of ``service`` in project apps."""
    return {
        "com.docker.compose.project": "apps",
        "com.docker.compose.service": service,
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.container-number": "1",
    }


def capture(lab: Lab, folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Start a real engine with 20 compose-labelled containers on pushed images, run our
    remote script and the baseline's inspections through a recording wrapper."""
    reg = lab.start_registry()
    engine = lab.start_engine("fleet")
    refs = [f"{reg}/acme/svc{i}:1.{i}" for i in range(4)]
    digests = {ref: lab.build_image(engine, ref, ref) for ref in refs}
    names, modules = [], []
    for i in range(CONTAINERS):
        ref = refs[i % len(refs)]
        name = f"apps-svc{i}-1"
        lab.run_container(
            engine,
            name,
            ref,
            labels=compose_labels(f"svc{i}"),
            env={"SECRET": "not-for-benchmarks"},
        )
        names.append(name)
        modules.append({"service": f"svc{i}", "image": f"{ref}@{digests[ref]}", "name": name})
    folder.mkdir(parents=True)
    env = {**engine.env()}
    from platformctl.collector.script import CONTAINER_TEMPLATE, IMAGE_TEMPLATE, INFO_TEMPLATE

    def docker(*args: str) -> bytes:
        return subprocess.run(["docker", *args], env=env, check=True, capture_output=True).stdout

    ids = docker("container", "ls", "--all", "--quiet", "--no-trunc").split()
    image_ids = sorted(
        set(
            docker(
                "container", "inspect", "--format", "{{.Image}}", *[i.decode() for i in ids]
            ).split()
        )
    )
    files = {
        "info": docker("info", "--format", INFO_TEMPLATE),
        "ls": b"\n".join(ids) + b"\n",
        "containers": docker(
            "container", "inspect", "--format", CONTAINER_TEMPLATE, *[i.decode() for i in ids]
        ),
        "image-ids": b"\n".join(image_ids) + b"\n",
        "images": docker(
            "image", "inspect", "--format", IMAGE_TEMPLATE, *[i.decode() for i in image_ids]
        ),
    }
    for name in names:
        files[f"inspect-{name}"] = docker("container", "inspect", name)
    for fname, data in files.items():
        (folder / fname).write_bytes(data)
    replay = folder / "docker"
    replay.write_text(REPLAY.format(capture=folder))
    replay.chmod(0o755)
    return names, modules


def write_platform(root: Path, hosts: list[str], modules: list[dict[str, str]]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for host in hosts:
        for m in modules:
            folder = root / "modules" / f"{host}-{m['service']}"
            folder.mkdir(parents=True)
            (folder / "module.yaml").write_text(
                yaml.safe_dump(
                    {
                        "spec": {
                            "runtime": {
                                "host": host,
                                "orchestrator": "docker-compose",
                                "compose_service": m["service"],
                                "compose_project": "apps",
                                "image_observed": m["image"],
                            }
                        }
                    }
                )
            )


def ssh_config(lab: Lab, path: Path, hosts: dict[str, tuple[str, int]]) -> None:
    lines = []
    for alias, (address, port) in hosts.items():
        lines.append(f"Host {alias}\n  HostName {address}\n  Port {port}\n")
    lines.append(
        f"Host *\n  User root\n  IdentityFile {lab.client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {lab.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
        "  BatchMode yes\n  StrictHostKeyChecking yes\n"
    )
    path.write_text("".join(lines))


@dataclass
class FleetHost:
    alias: str
    address: str
    port: int
    key: str


def address_of(index: int) -> str:
    """127.0.1.1 .. 127.0.1.250, then 127.0.2.1 ..."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def start_fleet(lab: Lab, count: int, per_sshd: int) -> list[FleetHost]:
    """``count`` hosts, each its own loopback address, ``per_sshd`` addresses per sshd."""
    hosts: list[FleetHost] = []
    for first in range(0, count, per_sshd):
        addresses = [address_of(i) for i in range(first, min(count, first + per_sshd))]
        extra = "".join(f"ListenAddress {a}\n" for a in addresses[1:])
        sshd = lab.start_sshd(f"sshd{first // per_sshd + 1:03d}", None, addresses[0], extra=extra)
        for i, address in enumerate(addresses):
            hosts.append(
                FleetHost(f"fleet{first + i + 1:03d}", address, sshd.port, sshd.host_key_pub)
            )
    with open(lab.known_hosts, "a") as fh:
        for h in hosts:
            fh.write(f"[{h.address}]:{h.port} {h.key}\n")
    return hosts


BATCHED = r"""
cfg=$1 script=$2; shift 2
for h in "$@"; do
  ssh -F "$cfg" "$h" sh -s < "$script" > /dev/null 2>&1 &
done
wait
"""


@dataclass
class Pairs:
    """Walls of a 1-host and an N-host run timed one right after the other, pair by pair."""

    one: list[float]
    many: list[float]

    def row(self, hosts: int, latency: float, install: str) -> str:
        ratios = [m / o for o, m in zip(self.one, self.many, strict=True)]
        return (
            f"| {install} | {hosts} | {latency:g} ms | {len(ratios)} | {spread(self.one)} | "
            f"{spread(self.many)} | {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}–{max(ratios):.2f}) |"
        )


def alternate_pairs(
    one: list[str], many: list[str], runs: int, folder: Path, installs: dict[str, str]
) -> dict[str, Pairs]:
    """Time ``one`` and ``many`` alternately, ``runs`` pairs for each of ``installs`` (label:
    python) in turn: a ratio of two runs a second apart, where the separate points of the table
    are minutes apart on a machine whose speed drifts (bench/README.md, fleet)."""
    caches = {label: f"cache{i}" for i, label in enumerate(installs)}
    for label, python in installs.items():  # platformctl's caches, as for every point
        for cmd in (one, many):
            run_measured(cmd, folder, python=python, cache=caches[label])
    pairs = {label: Pairs([], []) for label in installs}
    for _ in range(runs):
        for label, python in installs.items():
            for cmd, walls in ((one, pairs[label].one), (many, pairs[label].many)):
                measure = run_measured(cmd, folder, python=python, cache=caches[label])
                if measure.code != 0:
                    raise SystemExit(f"drift-check exited {measure.code} in a timed pair")
                walls.append(measure.wall)
    return pairs


def ansible_wall(
    ansible: str, folder: Path, config: Path, aliases: list[str], script: str
) -> float:
    """One ``ansible -m shell`` run of the remote script on every host, forks = hosts."""
    inventory = folder / "inventory.ini"
    inventory.write_text("[fleet]\n" + "\n".join(aliases) + "\n")
    env = {
        **os.environ,
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": f"-F {config} -o ControlMaster=no",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_LOCAL_TEMP": str(folder / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    # raw/endraw: the script's Go templates are not Jinja2 for Ansible to expand; the leading
    # no-op keeps Ansible from reading arguments that start with "{" as JSON.
    command = ":\n{% raw %}" + script + "{% endraw %}"
    cmd = [ansible, "fleet", "-i", str(inventory), "-m", "shell", "-a", command]
    return timed([*cmd, "--forks", str(len(aliases))], env=env)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", default="1,10,50,500")
    parser.add_argument("--latency", default="0,50", help="added round trips in ms")
    parser.add_argument("--relay-max", type=int, default=50, help="most hosts behind the relay")
    parser.add_argument("--per-sshd", type=int, default=10, help="addresses per sshd process")
    parser.add_argument("--runs", type=int, default=3, help="runs per point and command")
    parser.add_argument("--jobs", type=int, default=None, help="pass --jobs to drift-check")
    parser.add_argument(
        "--jobs-sweep",
        default="",
        help="also time these --jobs values at the largest relayed point, e.g. 16,32,64,128",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="also time this many hosts against 1 host in alternating pairs at each relayed "
        "latency, and report the ratio per pair (the 50-host target: --pairs 50)",
    )
    parser.add_argument("--pair-runs", type=int, default=9, help="pairs timed with --pairs")
    parser.add_argument(
        "--also", type=Path, default=None, help="another install's venv, timed in the pairs too"
    )
    parser.add_argument("--ansible", default=None, help="an ansible executable (optional)")
    parser.add_argument(
        "--ansible-max",
        type=int,
        default=50,
        help="most hosts to run Ansible on (forks = hosts: one Python process each)",
    )
    parser.add_argument(
        "--baseline-limit",
        type=int,
        default=100,
        help="obvious-script calls timed per point (rest extrapolated)",
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT, help="where to install platformctl")
    args = parser.parse_args()
    global PYTHON
    PYTHON = str(installed(args.venv) / "python")
    counts = [int(n) for n in args.hosts.split(",")]
    latencies = [float(x) for x in args.latency.split(",")]
    lab = Lab()
    try:
        names, modules = capture(lab, lab.root / "capture")
        docker = str(lab.root / "capture" / "docker")
        from platformctl.collector.script import build_script

        script = build_script(docker)
        script_file = lab.root / "remote.sh"
        script_file.write_text(script)
        hosts = start_fleet(lab, max(counts), args.per_sshd)
        sshd_pids = [h.proc.pid for h in lab.hosts.values() if h.proc is not None]
        print(
            f"{len(hosts)} hosts on {len(lab.hosts)} sshd; capture of {len(names)} containers "
            "from a real engine\n",
            flush=True,
        )
        rows = []
        busy_rows: list[str] = []
        sweep_rows = []
        pair_rows: list[str] = []
        for latency in latencies:
            relayed = [n for n in counts if not latency or n <= args.relay_max]
            if not relayed:
                continue
            targets: dict[str, tuple[str, int]] = {}
            relay = None
            if latency:
                relay_maps = []
                with open(lab.known_hosts, "a") as fh:
                    for h in hosts[: max(relayed)]:
                        port = free_port(h.address)
                        relay_maps.append((f"{h.address}:{port}", f"{h.address}:{h.port}"))
                        targets[h.alias] = (h.address, port)
                        fh.write(f"[{h.address}]:{port} {h.key}\n")
                relay = lab.start_relay(relay_maps, delay_ms=latency, name=f"delay{latency:g}")
            else:
                targets = {h.alias: (h.address, h.port) for h in hosts}
            config = lab.root / f"ssh_config_{latency:g}"
            ssh_config(lab, config, targets)

            def point(n: int, db: str, config: Path = config) -> list[str]:
                """drift-check of the first ``n`` hosts (their platform written afresh)."""
                root = lab.root / f"platform-{n}"
                write_platform(root, [h.alias for h in hosts[:n]], modules)
                cmd = [
                    "drift-check", "--root", str(root), "--ssh-config", str(config),
                    "--db", str(lab.root / db), "--docker-command", docker,
                ]  # fmt: skip
                return cmd + ["--jobs", str(args.jobs)] if args.jobs else cmd

            one_host_wall = None
            for n in relayed:
                aliases = [h.alias for h in hosts[:n]]
                cmd = point(n, f"b{n}-{latency:g}.db")
                batched = ["bash", "-c", BATCHED, "batched", str(config), str(script_file)]
                ours: list[Measure] = []
                floor: list[float] = []
                run_measured(cmd, lab.root)  # warms platformctl's caches; not counted
                lab_cpu = LabCpu(sshd_pids, relay.pid if relay else None)
                for _ in range(args.runs):  # alternating, so both see the same machine
                    ours.append(run_measured(cmd, lab.root, lab_cpu))
                    floor.append(timed([*batched, *aliases]))
                if any(m.code != 0 for m in ours):
                    print(f"drift-check exited {[m.code for m in ours]} for {n} hosts; aborting")
                    return
                walls = [m.wall for m in ours]
                med = sorted(ours, key=lambda m: m.wall)[len(ours) // 2]
                if n == 1:
                    one_host_wall = statistics.median(walls)
                ratio = statistics.median(walls) / one_host_wall if one_host_wall else float("nan")
                calls = [(a, name) for a in aliases for name in names]
                timed_calls = calls[: args.baseline_limit]
                start = time.perf_counter()
                for alias, name in timed_calls:
                    subprocess.run(
                        ["ssh", "-F", str(config), alias, docker, "container", "inspect", name],
                        capture_output=True,
                        check=True,
                    )
                obvious = (time.perf_counter() - start) * len(calls) / len(timed_calls)
                note = "" if len(timed_calls) == len(calls) else "*"
                ansible = "-"
                if args.ansible and n <= args.ansible_max:
                    wall = ansible_wall(args.ansible, lab.root, config, aliases, script)
                    ansible = f"{wall:.2f} s"
                ours_med = statistics.median(walls)
                row = (
                    f"| {n} | {latency:g} ms | {spread(walls)} | {med.cpu:.2f} s | "
                    f"{med.cpu * 1000 / n:.1f} ms | {med.children_cpu * 1000 / n:.1f} ms | "
                    f"{med.rss_mb:.0f} MB | {ratio:.2f}x | {spread(floor)} | "
                    f"{ours_med / statistics.median(floor):.2f}x | {obvious:.1f} s{note} | "
                    f"{obvious / ours_med:.0f}x | {ansible} |"
                )
                rows.append(row)
                cores = os.cpu_count() or 1
                known = med.cpu + med.children_cpu + med.sshd + med.relay
                busy_rows.append(
                    f"| {n} | {latency:g} ms | {med.wall:.2f} s | {med.wall * cores:.2f} s | "
                    f"{med.machine_busy:.2f} s | {med.cpu:.2f} s | {med.children_cpu:.2f} s | "
                    f"{med.sshd:.2f} s | {med.relay:.2f} s | "
                    f"{max(0.0, med.machine_busy - known):.2f} s |"
                )
                print(row, flush=True)
            sweep = [int(j) for j in args.jobs_sweep.split(",") if j]
            if sweep and latency == max(latencies):
                n = max(relayed)
                root = lab.root / f"platform-{n}"
                write_platform(root, [h.alias for h in hosts[:n]], modules)
                for jobs in sweep:
                    cmd = [
                        "drift-check", "--root", str(root), "--ssh-config", str(config),
                        "--db", str(lab.root / f"sweep{jobs}.db"), "--docker-command", docker,
                        "--jobs", str(jobs),
                    ]  # fmt: skip
                    run_measured(cmd, lab.root)  # platformctl's caches, as above
                    runs = [run_measured(cmd, lab.root) for _ in range(args.runs)]
                    sweep_rows.append(
                        f"| {n} | {latency:g} ms | {jobs} | {spread([m.wall for m in runs])} | "
                        f"{statistics.median(m.cpu for m in runs):.2f} s | "
                        f"{max(m.rss_mb for m in runs):.0f} MB |"
                    )
                    print(sweep_rows[-1], flush=True)
            if args.pairs and latency and {1, args.pairs} <= set(relayed):
                installs = {"this checkout": PYTHON}
                if args.also:
                    installs[f"also ({args.also})"] = str(args.also / "bin" / "python")
                timed_pairs = alternate_pairs(
                    point(1, f"pair1-{latency:g}.db"),
                    point(args.pairs, f"pair{args.pairs}-{latency:g}.db"),
                    args.pair_runs,
                    lab.root,
                    installs,
                )
                for label, pairs in timed_pairs.items():
                    pair_rows.append(pairs.row(args.pairs, latency, label))
                    print(pair_rows[-1], flush=True)
            if relay is not None:
                relay.terminate()
                relay.wait()
        print(
            "\n| hosts | added RTT | drift-check wall, median (min–max) | CPU | CPU per host "
            "| ssh -G CPU per host | peak RSS | × 1-host wall | batched OpenSSH | × batched "
            "| obvious script | speed-up | Ansible |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        print(
            "\n| hosts | added RTT | wall (median run) | core-seconds available | machine busy "
            "| platformctl | its ssh -G | the lab's sshd sessions | the latency relay | other |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(busy_rows))
        if sweep_rows:
            print("\n| hosts | added RTT | --jobs | wall, median (min–max) | CPU | peak RSS |")
            print("|---|---|---|---|---|---|")
            print("\n".join(sweep_rows))
        if pair_rows:
            print(
                "\n| install | hosts | added RTT | pairs | 1 host, median (min–max) "
                "| hosts, median (min–max) | × 1-host wall per pair, median (min–max) |"
            )
            print("|---|---|---|---|---|---|---|")
            print("\n".join(pair_rows))
        print("\n* obvious script extrapolated from the first", args.baseline_limit, "calls")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        lab.stop()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main()
