"""Benchmark: the snapshot store over one year of hourly snapshots (SPEC §8, issue 3).

Run: ``python -m bench.store [--snapshots 8760] [--keep DIR]``.

Builds, through the same ``Store.save`` the collector uses, a year of hourly snapshots of
10 hosts × 20 unchanged containers, with a platform of 200 modules (one per container; every
tenth declares another tag, so it has been drifting all year). Then measures:

* the store's size on disk (target ≤ 10 MB) and bytes added per unchanged snapshot;
* saving one snapshot of 10 × 20 (target ≤ 50 ms), unchanged and changed;
* ``drift-history`` over the year for 50 modules, in-process (target ≤ 100 ms) and CLI wall;
* ``drift-check --snapshot latest`` replay for 200 modules, CLI wall (target ≤ 1 s).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from platformctl.collector.model import (
    Collection,
    Container,
    HostResult,
    HostState,
    HostStatus,
    Image,
)
from platformctl.snapshots.store import Store

HOSTS, CONTAINERS = 10, 20


def h(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def host_state(host: str, version: str = "1.0") -> HostState:
    containers, images = [], []
    for i in range(CONTAINERS):
        image_id = "sha256:" + h(f"{host}-{i}-{version}")
        containers.append(
            Container(
                id=h(f"{host}{i}"),
                name=f"apps-svc{i}-1",
                created="2026-01-01T00:00:00Z",
                started="2026-01-01T00:00:01Z",
                status="running",
                running=True,
                config_image=f"ghcr.io/acme/svc{i}:{version}",
                image_id=image_id,
                project="apps",
                service=f"svc{i}",
                oneoff=False,
                number="1",
            )
        )
        images.append(
            Image(
                image_id,
                (f"ghcr.io/acme/svc{i}:{version}",),
                (f"ghcr.io/acme/svc{i}@sha256:{h('d' + image_id)}",),
            )
        )
    return HostState(tuple(containers), tuple(images))


def collection(taken_at: datetime, states: dict[str, HostState]) -> Collection:
    return Collection(
        taken_at,
        tuple(
            HostResult(name, HostStatus.OK, None, "24.0.7", "overlay2", 150, state)
            for name, state in states.items()
        ),
    )


def write_platform(root: Path, states: dict[str, HostState]) -> None:
    for host, state in states.items():
        for c in state.containers:
            image = state.image(c.image_id)
            assert image is not None
            digest = image.repo_digests[0].split("@")[1]
            tag = "1.0" if int(c.service[3:]) % 10 else "0.9"  # every tenth drifts
            folder = root / "modules" / f"{host}-{c.service}"
            folder.mkdir(parents=True)
            ref = (
                f"ghcr.io/acme/{c.service}:{tag}@{digest}"
                if tag == "1.0"
                else f"ghcr.io/acme/{c.service}:{tag}"
            )
            (folder / "module.yaml").write_text(
                yaml.safe_dump(
                    {
                        "spec": {
                            "runtime": {
                                "host": host,
                                "orchestrator": "docker-compose",
                                "compose_service": c.service,
                                "compose_project": "apps",
                                "image_observed": ref,
                            }
                        }
                    }
                )
            )


def disk_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


def wall(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        out.append(time.perf_counter() - start)
    return out


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms (min {min(values) * 1000:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=8760)
    parser.add_argument("--keep", type=Path, help="leave the store and platform in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="pctl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "year.db"
    if db.exists():
        db.unlink()
    states = {f"host{i:02d}": host_state(f"host{i:02d}") for i in range(HOSTS)}
    platform = work / "platform"
    shutil.rmtree(platform, ignore_errors=True)
    write_platform(platform, states)

    store = Store.open(db)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=args.snapshots + 50)
    t0 = time.perf_counter()
    store.save(collection(start, states), "bench")
    first = disk_size(db)
    for i in range(1, args.snapshots):
        stamp = start + timedelta(hours=i)
        store.save(collection(stamp, states), "bench")
    build = time.perf_counter() - t0
    size = disk_size(db)
    print(f"built {args.snapshots} snapshots of {HOSTS}x{CONTAINERS} in {build:.1f} s")
    print(
        f"store size: {size / 1e6:.2f} MB (target <= 10 MB); "
        f"{(size - first) / max(1, args.snapshots - 1):.0f} bytes per unchanged snapshot"
    )

    saves = []
    for i in range(30):
        stamp = start + timedelta(hours=args.snapshots + i)
        c = collection(stamp, states)
        t = time.perf_counter()
        store.save(c, "bench")
        saves.append(time.perf_counter() - t)
    changed = []
    for i in range(10):
        stamp = start + timedelta(hours=args.snapshots + 30 + i)
        c = collection(stamp, {n: host_state(n, f"2.{i}") for n in states})
        t = time.perf_counter()
        store.save(c, "bench")
        changed.append(time.perf_counter() - t)
    # Back to the year's state so the history and replay below see the same platform.
    store.save(
        collection((start + timedelta(hours=args.snapshots + 41)), states),
        "bench",
    )
    print(
        f"save one snapshot: unchanged {ms(saves)}, all hosts changed {ms(changed)} "
        "(target <= 50 ms)"
    )

    from platformctl.api import drift_history
    from platformctl.declared.manifests import load_declared

    declared = load_declared(platform)
    fifty = declared.modules[:50]
    timings = []
    for _ in range(20):
        t = time.perf_counter()
        _, _, items = drift_history(fifty, Store.open(db), timedelta(days=366))
        timings.append(time.perf_counter() - t)
    drifting = sum(1 for item in items if item.intervals)
    print(
        f"drift-history, 50 modules over the year, in-process: {ms(timings)} "
        f"({drifting} with an interval; target <= 100 ms)"
    )
    exe = [sys.executable, "-m", "platformctl"]
    names = [m.name for m in fifty]
    hist_cli = wall(
        [
            *exe,
            "drift-history",
            *names,
            "--since",
            "366d",
            "--json",
            "--root",
            str(platform),
            "--db",
            str(db),
        ],
        10,
    )
    print(f"drift-history, 50 modules, CLI wall: {ms(hist_cli)}")
    replay = wall(
        [
            *exe,
            "drift-check",
            "--snapshot",
            "latest",
            "--json",
            "--root",
            str(platform),
            "--db",
            str(db),
        ],
        10,
    )
    check = subprocess.run(
        [*exe, "drift-check", "--snapshot", "latest", "--root", str(platform), "--db", str(db)],
        capture_output=True,
        text=True,
    )
    print(
        f"drift-check --snapshot latest, 200 modules, CLI wall: {ms(replay)} "
        f"(target <= 1 s); exit {check.returncode}; {check.stdout.strip().splitlines()[-1]}"
    )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
