"""Benchmark: ``platformctl report`` over a year of hourly snapshots of 200 modules (issue 11).

Run: ``python -m bench.report [--snapshots 8760] [--flap-days 14] [--outage-days 30]``.

Builds, through ``Store.save`` as ``bench.store`` does, a year of hourly snapshots of 10 hosts
× 20 containers with the same 200-module platform (every tenth module drifts all year), and
adds churn so the timeline has something to draw: every ``--flap-days`` each host runs a
hotfix image for three hours (its 20 modules drift, then are fixed), and every
``--outage-days`` each host is unreachable for two hours. Then measures the report over the
whole year (``--since 366d``): in-process time (target ≤ 2 s), CLI wall time and the file's
size (target ≤ 2 MB).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.store import HOSTS, collection, disk_size, host_state, write_platform
from platformctl.collector.model import Collection, HostResult, HostStatus
from platformctl.snapshots.store import Store


def build(db: Path, platform: Path, hours: int, flap_days: int, outage_days: int) -> datetime:
    """Write the platform and the store; return the newest snapshot's time."""
    names = [f"host{i:02d}" for i in range(HOSTS)]
    normal = {n: host_state(n) for n in names}
    hotfix = {n: host_state(n, "1.0-hotfix") for n in names}
    write_platform(platform, normal)
    store = Store.open(db)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    for hour in range(hours):
        results = []
        for i, name in enumerate(names):
            offset = i * 17  # hosts change at different hours
            if outage_days and (hour + offset) % (outage_days * 24) < 2:
                results.append(HostResult(name, HostStatus.UNREACHABLE, "connection timed out"))
                continue
            flapping = flap_days and (hour + offset) % (flap_days * 24) in (5, 6, 7)
            state = hotfix[name] if flapping else normal[name]
            results.append(collection(start, {name: state}).hosts[0])
        store.save(Collection(start + timedelta(hours=hour), tuple(results)), "bench")
    return start + timedelta(hours=hours - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=8760)
    parser.add_argument("--flap-days", type=int, default=14)
    parser.add_argument("--outage-days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="leave the store, platform and report here")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the store already in --keep (no build)"
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="pctl-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    db, platform, html = work / "year.db", work / "platform", work / "report.html"
    if not (args.reuse and db.exists()):
        db.unlink(missing_ok=True)
        shutil.rmtree(platform, ignore_errors=True)
        t0 = time.perf_counter()
        build(db, platform, args.snapshots, args.flap_days, args.outage_days)
        print(
            f"built {args.snapshots} snapshots of {HOSTS} hosts in "
            f"{time.perf_counter() - t0:.1f} s; store {disk_size(db) / 1e6:.2f} MB"
        )

    from platformctl import api
    from platformctl.declared.manifests import load_declared
    from platformctl.output.report import render_report

    scope = load_declared(platform).modules
    timings = []
    for _ in range(args.runs):
        t = time.perf_counter()
        overview = api.overview(scope, Store.open(db, create=False), timedelta(days=366))
        render_report(overview, platform)
        timings.append(time.perf_counter() - t)
    segments = sum(len(h.within(overview.start)) for h in overview.histories)
    outages = sum(len(o) for o in overview.outages.values())
    print(
        f"report, {len(scope)} modules over the year, in-process: "
        f"{statistics.median(timings) * 1000:.0f} ms (min {min(timings) * 1000:.0f}; "
        f"target <= 2 s); {segments} not-ok intervals, {outages} host outages"
    )
    exe = [sys.executable, "-m", "platformctl"]
    where = ["--root", str(platform), "--db", str(db)]
    replay = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run(
            [*exe, "drift-check", "--snapshot", "latest", "--json", *where], capture_output=True
        )
        replay.append(time.perf_counter() - t)
    print(
        f"for scale, drift-check --snapshot latest CLI wall in the same run: "
        f"{statistics.median(replay) * 1000:.0f} ms"
    )
    walls = []
    for _ in range(args.runs):
        t = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "platformctl",
                "report",
                "--since",
                "366d",
                "--root",
                str(platform),
                "--db",
                str(db),
                "--output",
                str(html),
            ],
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - t)
        if proc.returncode != 0:
            sys.exit(f"report failed: {proc.stderr}")
    size = html.stat().st_size
    print(
        f"report CLI wall: {statistics.median(walls) * 1000:.0f} ms "
        f"(min {min(walls) * 1000:.0f}); file {size / 1e6:.2f} MB (target <= 2 MB)"
    )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
