"""Benchmark: drift-check across a fleet of real sshd hosts (SPEC §8, issue 4).

Run (as root, lab packages installed): ``python -m bench.fleet [--hosts 1,10,50]
[--latency 0,50] [--baseline-limit N]``.

* Every host is a real ``sshd`` on its own loopback address (127.0.1.N), with 20 containers.
* The remote ``docker`` is a stand-in that replays output captured, in the same run, from a real
  engine running those 20 containers (compose labels, registry digests). Why: this machine has
  2 cores; 50 hosts running the real docker CLI (4 invocations each, ~40 ms of CPU apiece)
  against one shared engine would measure that engine and this machine's CPU, not the
  fan-out — real hosts each bring their own engine and CPU.
* Added latency: a userspace relay (``tests.lab.relay``) in front of every host holds each
  chunk back by half the round trip in each direction (this kernel has no netem).
* Baseline, in the same run: the obvious script — a serial loop of OpenSSH
  ``ssh host docker container inspect NAME`` once per module. ``--baseline-limit`` caps how
  many of its calls are timed; the rest is extrapolated linearly (it is a serial loop of
  identical calls) and the table says so.

Prints wall time, CPU time (user+sys of the process and its children) and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

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
      "{{{{.Image}}}}") exec cat "$d/image-ids" ;;
      "") exec cat "$d/inspect-$3" ;;
      *) exec cat "$d/containers" ;;
    esac ;;
esac
echo "no capture for: $*" >&2
exit 1
"""


@dataclass
class Measure:
    wall: float
    cpu: float
    rss_mb: float
    code: int


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> Measure:
    """Run ``cmd``; wall time, CPU (user+sys, children included) and peak RSS via wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode)


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
            labels={
                "com.docker.compose.project": "apps",
                "com.docker.compose.service": f"svc{i}",
                "com.docker.compose.oneoff": "False",
                "com.docker.compose.container-number": "1",
            },
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", default="1,10,50")
    parser.add_argument("--latency", default="0,50", help="added round trips in ms")
    parser.add_argument("--runs", type=int, default=3, help="drift-check runs per point")
    parser.add_argument("--jobs", type=int, default=None, help="pass --jobs to drift-check")
    parser.add_argument(
        "--baseline-limit",
        type=int,
        default=200,
        help="baseline calls timed per point (rest extrapolated)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    latencies = [float(x) for x in args.latency.split(",")]
    lab = Lab()
    try:
        names, modules = capture(lab, lab.root / "capture")
        docker = str(lab.root / "capture" / "docker")
        fleet = max(counts)
        hosts = []
        for i in range(fleet):
            address = f"127.0.1.{i + 1}"
            host = lab.start_sshd(f"fleet{i + 1:02d}", None, address=address)
            hosts.append(host)
        print(f"{fleet} sshd up; capture of {len(names)} containers from a real engine\n")
        print(
            "| hosts | added RTT | drift-check wall | CPU | peak RSS | 1-host ratio "
            "| baseline wall | speed-up |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for latency in latencies:
            targets: dict[str, tuple[str, int]] = {}
            if latency:
                relay_maps = []
                for h in hosts:
                    port = free_port(h.address)
                    relay_maps.append((f"{h.address}:{port}", f"{h.address}:{h.port}"))
                    targets[h.alias] = (h.address, port)
                    with open(lab.known_hosts, "a") as fh:
                        fh.write(f"[{h.address}]:{port} {h.host_key_pub}\n")
                relay = lab.start_relay(relay_maps, delay_ms=latency, name=f"delay{latency:g}")
            else:
                targets = {h.alias: (h.address, h.port) for h in hosts}
            config = lab.root / f"ssh_config_{latency:g}"
            ssh_config(lab, config, targets)
            one_host_wall = None
            for n in counts:
                aliases = [h.alias for h in hosts[:n]]
                root = lab.root / f"platform-{n}"
                write_platform(root, aliases, modules)
                cmd = [
                    sys.executable,
                    "-m",
                    "platformctl",
                    "drift-check",
                    "--root",
                    str(root),
                    "--ssh-config",
                    str(config),
                    "--db",
                    str(lab.root / f"b{n}.db"),
                    "--docker-command",
                    docker,
                ]
                if args.jobs:
                    cmd += ["--jobs", str(args.jobs)]
                runs = [run_measured(cmd) for _ in range(args.runs)]
                runs.sort(key=lambda m: m.wall)
                med = runs[len(runs) // 2]
                if med.code != 0:
                    print(f"drift-check exited {med.code} for {n} hosts; aborting")
                    return
                if n == 1:
                    one_host_wall = med.wall
                ratio = med.wall / one_host_wall if one_host_wall else float("nan")
                calls = [(a, name) for a in aliases for name in names]
                timed = calls[: args.baseline_limit]
                start = time.perf_counter()
                for alias, name in timed:
                    subprocess.run(
                        ["ssh", "-F", str(config), alias, docker, "container", "inspect", name],
                        capture_output=True,
                        check=True,
                    )
                spent = time.perf_counter() - start
                baseline = spent * len(calls) / len(timed)
                note = "" if len(timed) == len(calls) else f" (extrapolated from {len(timed)})"
                print(
                    f"| {n} | {latency:g} ms | {med.wall:.2f} s | {med.cpu:.2f} s | "
                    f"{med.rss_mb:.0f} MB | {ratio:.2f}x | {baseline:.1f} s{note} | "
                    f"{baseline / med.wall:.0f}x |",
                    flush=True,
                )
            if latency:
                relay.terminate()
                relay.wait()
    finally:
        lab.stop()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main()
