"""Benchmark: what resolving hosts with OpenSSH's ``ssh -G`` costs, at 1, 50 and 500 hosts.

Run: ``python -m bench.sshresolve [--hosts 1,50,500] [--runs 3] [--jobs 16]``.

For N hosts it writes an ssh config of the shape fleets use (one ``Host`` block per host with
``HostName``/``Port``, an ``Include`` of a vendor file, a ``Match`` block, ``Host *`` defaults),
then resolves every host the way a run does: one lookup per host, ``--jobs`` at a time in
threads. It reports the wall time of the whole resolution, its CPU (ours and the children's),
and the per-host cost, for ``ssh -G`` without platformctl's cache of its answers, with the
cache empty (a first run: ``ssh -v -G`` for every host, the answers written), with the cache
filled by an earlier run (docs/design.md, "ssh -G answers"; opening and closing the cache
included), and for platformctl's own resolver (the fallback). No connection is made: this is
the price of resolution alone, paid before each connection.

``--connect N`` adds the price in context: N full connections (handshake, login, ``true``) to
one lab sshd on loopback, serially, with each resolver (needs root and sshd, as the lab).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from platformctl.collector.openssh import OpenSshResolver
from platformctl.collector.sshconfig import Resolver, SshConfigFile
from platformctl.collector.sshgcache import SshGCache


def write_config(folder: Path, hosts: int) -> Path:
    """A config with ``hosts`` aliases ``h0``..``hN-1``; returns its path."""
    vendor = folder / "vendor.conf"
    vendor.write_text("Host orb\n  HostName 127.0.0.1\n  Port 32222\n  User default\n")
    lines = [f"Include {vendor}\n"]
    for i in range(hosts):
        lines.append(f"Host h{i}\n  HostName 10.{i // 65536}.{i // 256 % 256}.{i % 256}\n")
        if i % 10 == 0:
            lines.append("  Port 2222\n")
        if i % 25 == 0:
            lines.append("  ProxyJump bastion\n")
    lines.append("Match host 10.0.*\n  ServerAliveInterval 30\n")
    lines.append(
        "Host *\n  User deploy\n  IdentityFile ~/.ssh/id_ed25519\n  IdentitiesOnly yes\n"
        "  ConnectTimeout 5\n"
    )
    config = folder / "config"
    config.write_text("".join(lines))
    return config


def measure(make: Callable[[], Resolver], hosts: int, jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds (this process and its children) of one run's resolution of every
    host: the resolver made, every host looked up once, the resolver closed."""
    names = [f"h{i}" for i in range(hosts)]
    before = os.times()
    start = time.perf_counter()
    resolver = make()
    lookup: Callable[[str], object] = resolver.lookup
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, hosts))) as pool:
        list(pool.map(lookup, names))
    resolver.close()
    wall = time.perf_counter() - start
    after = os.times()
    cpu = sum(after[i] - before[i] for i in range(4))
    return wall, cpu


def cached(ssh: str, config: Path, folder: Path, empty: bool = False) -> OpenSshResolver:
    """``ssh -G`` with the answers cached in ``folder`` (``empty``: a new cache inside it)."""
    if empty:
        folder = Path(tempfile.mkdtemp(prefix="cache-", dir=folder))
    return OpenSshResolver(ssh, config, cache=SshGCache.open(ssh, config, folder))


def connect(count: int) -> None:
    """Wall and CPU per full connection to a lab sshd, with each resolver."""
    from platformctl.collector.openssh import find_ssh
    from platformctl.collector.ssh import SshSettings, SshTransport
    from tests.lab.lab import Lab

    ssh = find_ssh()
    assert ssh is not None
    lab = Lab()
    try:
        lab.start_sshd("bench", None)
        print("\n| resolver | wall per connection | CPU per connection (with children) |")
        print("|---|---|---|")
        resolvers: list[tuple[str, Resolver]] = [
            ("ssh -G", OpenSshResolver(ssh, lab.ssh_config)),
            ("own (fallback)", SshConfigFile(lab.ssh_config)),
        ]
        for label, resolver in resolvers:
            settings = SshSettings(resolver, 10, 10)
            SshTransport("bench", settings).run("true")  # warm
            before = os.times()
            start = time.perf_counter()
            for _ in range(count):
                SshTransport("bench", settings).run("true")
            wall = (time.perf_counter() - start) / count
            after = os.times()
            cpu = sum(after[i] - before[i] for i in range(4)) / count
            print(f"| {label} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms |")
    finally:
        lab.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", default="1,50,500")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--connect", type=int, default=0, help="also time N full connections")
    args = parser.parse_args()
    ssh = shutil.which("ssh")
    if ssh is None:
        sys.exit("no ssh client on PATH")
    print("| hosts | resolver | wall (all hosts) | CPU | wall per host | CPU per host |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(n) for n in args.hosts.split(",")):
            folder = Path(tmp) / str(count)
            folder.mkdir()
            config = write_config(folder, count)
            kept = folder / "cache-kept"
            makers: list[tuple[str, Callable[[], Resolver]]] = [
                ("ssh -G", partial(OpenSshResolver, ssh, config)),
                ("ssh -G, cache empty", partial(cached, ssh, config, folder, empty=True)),
                ("ssh -G, answers kept", partial(cached, ssh, config, kept)),
                ("own (fallback)", partial(SshConfigFile, config)),
            ]
            measure(makers[2][1], count, args.jobs)  # an earlier run fills the kept cache
            for label, make in makers:
                measure(make, min(count, 5), args.jobs)  # warm the OS's caches
                runs = [measure(make, count, args.jobs) for _ in range(args.runs)]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                print(
                    f"| {count} | {label} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms "
                    f"| {wall / count * 1000:.2f} ms | {cpu / count * 1000:.2f} ms |"
                )
    if args.connect:
        connect(args.connect)


if __name__ == "__main__":
    main()
