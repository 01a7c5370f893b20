"""Measurement: the wall time of a run whose hosts carry many modules, this checkout against
another install, alternating.

Run (as root, lab packages installed)::

    python -m bench.manymodules --hosts 10 --modules 100 --also /path/to/other/venv

The fleet of ``bench.fleet`` (real sshd on loopback addresses, the replayed engine output),
every host behind the latency relay (``--latency`` ms of added round trip), and ``--modules``
manifests per host (the captured compose services, repeated). It shows what reading the
manifests costs a run's wall time: a run that starts each host only after reading every
manifest waits for all of them first (docs/design.md, "Start-up"). Each install keeps its own
caches, warmed by one untimed run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import yaml

from bench import fleet
from bench.install import DEFAULT, installed, run_installed
from tests.lab.lab import Lab, free_port


def write_platform(root: Path, hosts: list[str], modules: list[dict[str, str]], count: int) -> None:
    for host in hosts:
        for k in range(count):
            m = modules[k % len(modules)]
            folder = root / "modules" / f"{host}-{k:03d}"
            folder.mkdir(parents=True)
            runtime = {
                "host": host,
                "orchestrator": "docker-compose",
                "compose_service": m["service"],
                "compose_project": "apps",
                "image_observed": m["image"],
            }
            (folder / "module.yaml").write_text(yaml.safe_dump({"spec": {"runtime": runtime}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--modules", type=int, default=100, help="modules per host")
    parser.add_argument("--latency", type=float, default=50, help="added round trip, ms")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--venv", type=Path, default=DEFAULT, help="where to install platformctl")
    parser.add_argument("--also", type=Path, default=None, help="another install's venv")
    args = parser.parse_args()
    installs = {"this checkout": str(installed(args.venv) / "python")}
    if args.also:
        installs[str(args.also)] = str(args.also / "bin" / "python")
    lab = Lab()
    try:
        _, modules = fleet.capture(lab, lab.root / "capture")
        docker = str(lab.root / "capture" / "docker")
        hosts = fleet.start_fleet(lab, args.hosts, 10)
        maps, targets = [], {}
        with open(lab.known_hosts, "a") as fh:
            for h in hosts:
                port = free_port(h.address)
                maps.append((f"{h.address}:{port}", f"{h.address}:{h.port}"))
                targets[h.alias] = (h.address, port)
                fh.write(f"[{h.address}]:{port} {h.key}\n")
        lab.start_relay(maps, delay_ms=args.latency, name="delay")
        config = lab.root / "ssh_config"
        fleet.ssh_config(lab, config, targets)
        root = lab.root / "platform"
        write_platform(root, [h.alias for h in hosts], modules, args.modules)

        def run(i: int, python: str) -> float:
            args = [
                "-m", "platformctl", "drift-check", "--root", str(root),
                "--ssh-config", str(config), "--db", str(lab.root / f"{i}.db"),
                "--docker-command", docker,
            ]  # fmt: skip
            start = time.perf_counter()
            proc = run_installed(python, args, lab.root / f"cache{i}")
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"drift-check exited {proc.returncode}: {proc.stderr[-600:]!r}")
            return wall

        pythons = list(installs.values())
        for i, python in enumerate(pythons):
            run(i, python)  # warms the caches; not counted
        walls: list[list[float]] = [[] for _ in pythons]
        for _ in range(args.runs):  # alternating, so every install sees the same machine
            for i, python in enumerate(pythons):
                walls[i].append(run(i, python))
        print(
            f"{args.hosts} hosts x {args.modules} modules, {args.latency:g} ms added round "
            f"trip, {args.runs} runs\n\n| install | wall, median | min | max |\n|---|---|---|---|"
        )
        for name, w in zip(installs, walls, strict=True):
            print(f"| {name} | {statistics.median(w):.3f} s | {min(w):.3f} s | {max(w):.3f} s |")
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
