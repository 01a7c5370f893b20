"""Measurement: what one SSH connection of a run costs in CPU, with paramiko and with asyncssh.

Run (as root, lab packages installed)::

    python -m bench.sshclients [--hosts 200] [--jobs 1,16,64] [--runs 3] [--asyncssh PYTHON]

Issue 12's 500-host target leaves about 10 ms of CPU per host, and paramiko's connection
alone costs most of it. This measures, against the fleet of ``bench.fleet`` (real sshd on
loopback addresses, the replayed engine output of 20 containers), the same collection done
three ways, each in a process of its own, alternating, at each concurrency of ``--jobs``:

* **platformctl**: its own SSH transport, as a run uses it (``Connector``: ``ssh -G`` answers
  kept from an untimed run, the host key checked against known_hosts, key login, the remote
  script, both streams read to the end), ``--jobs`` threads taking hosts from a queue;
* **paramiko, bare**: the same steps written plainly with paramiko (no socket options, no
  timeouts, no ``ssh -G``; AES-GCM first, as platformctl asks): what is paramiko's and what
  is platformctl's around it;
* **asyncssh**: the same steps with asyncssh in one asyncio event loop, at most ``--jobs``
  connections at once, with the algorithms platformctl negotiates (curve25519-sha256,
  aes128-gcm, no compression). asyncssh is not a dependency: ``--asyncssh`` names a Python
  that has it installed (``python -m venv V && V/bin/pip install asyncssh``).

Each client first makes one untimed connection (imports, keys and known_hosts read, whatever
is done once), then connects to every host; CPU is the client process's own (all threads)
over those, per connection, the median over ``--runs``. Each client checks it read the
whole answer from every host.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench import fleet
from tests.lab.lab import Lab

# Each client: argv = [which, hosts.json, jobs]; prints {"cpu": seconds, "wall": seconds}.
CLIENT = r"""
import json, resource, sys, threading, time, queue
which, spec, jobs = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
hosts, script = spec["hosts"], spec["script"].encode()
sizes = []

def cpu(who=resource.RUSAGE_SELF):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime

children_before = 0.0

def threaded(one, items):
    todo = queue.Queue()
    for item in items:
        todo.put(item)
    def work():
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            one(item)
    workers = [threading.Thread(target=work) for _ in range(min(jobs, len(items)))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

if which == "asyncssh":
    import asyncio, asyncssh
    key = asyncssh.read_private_key(spec["key"])
    known = asyncssh.read_known_hosts(spec["known_hosts"])
    async def one(limit, address, port):
        async with limit:
            async with asyncssh.connect(
                address, port, username="root", client_keys=[key], known_hosts=known,
                agent_path=None, config=None, kex_algs=["curve25519-sha256"],
                encryption_algs=["aes128-gcm@openssh.com"], compression_algs=None,
            ) as conn:
                result = await conn.run("sh -s", input=script, encoding=None)
                sizes.append(len(result.stdout))
    async def main():
        limit = asyncio.Semaphore(jobs)
        await one(limit, hosts[0]["address"], hosts[0]["port"])  # untimed: first-use costs
        sizes.clear()
        global start, clock, children_before
        children_before = cpu(resource.RUSAGE_CHILDREN)
        start, clock = cpu(), time.perf_counter()
        await asyncio.gather(*(one(limit, h["address"], h["port"]) for h in hosts))
    asyncio.run(main())
elif which == "paramiko":
    import socket, paramiko
    key = paramiko.Ed25519Key.from_private_key_file(spec["key"])
    known = paramiko.HostKeys(spec["known_hosts"])
    def one(h):
        transport = paramiko.Transport(socket.create_connection((h["address"], h["port"])))
        # platformctl's cipher choice (docs/design.md, "SSH"), the one asyncssh is given too
        options = transport.get_security_options()
        options.ciphers = ("aes128-gcm@openssh.com",) + tuple(
            c for c in options.ciphers if c != "aes128-gcm@openssh.com"
        )
        transport.start_client()
        name = f"[{h['address']}]:{h['port']}"
        assert known.check(name, transport.get_remote_server_key())
        transport.auth_publickey("root", key)
        chan = transport.open_session()
        chan.exec_command("sh -s")
        chan.sendall(script)
        chan.shutdown_write()
        out = []
        while data := chan.recv(1 << 16):
            out.append(data)
        while chan.recv_stderr_ready():
            chan.recv_stderr(1 << 16)
        chan.recv_exit_status()
        sizes.append(len(b"".join(out)))
        transport.close()
    one(hosts[0])  # untimed: first-use costs
    sizes.clear()
    children_before = cpu(resource.RUSAGE_CHILDREN)
    start, clock = cpu(), time.perf_counter()
    threaded(one, hosts)
else:
    from platformctl.collector.connector import CollectOptions, Connector
    connector = Connector(CollectOptions(ssh_config=spec["config"]))
    def one(h):
        sizes.append(len(connector(h["alias"]).run(spec["script"]).stdout))
    one(hosts[0])  # untimed: paramiko's import, the key and known_hosts are read on first use
    sizes.clear()
    children_before = cpu(resource.RUSAGE_CHILDREN)
    start, clock = cpu(), time.perf_counter()
    threaded(one, hosts)
    connector.close()
used, wall = cpu() - start, time.perf_counter() - clock
assert len(sizes) == len(hosts) and min(sizes) == max(sizes) > 1000, sizes[:3]
# Children started while timed (platformctl's ssh -G, were an answer not kept) are not in
# `used`: say so.
children = cpu(resource.RUSAGE_CHILDREN) - children_before
print(json.dumps({"cpu": used, "wall": wall, "children": children}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--jobs", default="1,16,64", help="connections at once, e.g. 1,16,64")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-sshd", type=int, default=10, help="addresses per sshd process")
    parser.add_argument("--asyncssh", default=None, help="a Python with asyncssh installed")
    args = parser.parse_args()
    lab = Lab()
    try:
        fleet.capture(lab, lab.root / "capture")
        from platformctl.collector.script import build_script

        hosts = fleet.start_fleet(lab, args.hosts, args.per_sshd)
        config = lab.root / "ssh_config"
        fleet.ssh_config(lab, config, {h.alias: (h.address, h.port) for h in hosts})
        spec = lab.root / "clients.json"
        spec.write_text(
            json.dumps(
                {
                    "hosts": [
                        {"alias": h.alias, "address": h.address, "port": h.port} for h in hosts
                    ],
                    "script": build_script(str(lab.root / "capture" / "docker")),
                    "key": str(lab.client_key),
                    "known_hosts": str(lab.known_hosts),
                    "config": str(config),
                }
            )
        )
        clients = {"platformctl": sys.executable, "paramiko, bare": sys.executable}
        if args.asyncssh:
            clients["asyncssh"] = args.asyncssh
        env = {"XDG_CACHE_HOME": str(lab.root / "cache"), "PATH": "/usr/bin:/bin"}

        def run(name: str, jobs: int) -> dict[str, float]:
            which = name.split(",")[0]
            proc = subprocess.run(
                [clients[name], "-W", "ignore", "-c", CLIENT, which, str(spec), str(jobs)],
                capture_output=True,
                text=True,
                check=False,
                env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            )
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed: {proc.stderr.strip()[-2000:]}")
            return dict(json.loads(proc.stdout))

        run("platformctl", 64)  # untimed: keeps the ssh -G answers, as a scheduled run finds them
        print(f"{args.hosts} hosts on {len(lab.hosts)} sshd, {args.runs} runs each\n")
        print("| connections at once | client | CPU per connection, median (min–max) | wall |")
        print("|---|---|---|---|")
        for jobs in (int(j) for j in args.jobs.split(",")):
            found: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
            for _ in range(args.runs):
                for name in clients:
                    found[name].append(run(name, jobs))
            for name, results in found.items():
                if any(r["children"] for r in results):
                    print(f"note: {name} ran child processes while timed: not in its CPU")
                per = sorted(r["cpu"] / args.hosts * 1000 for r in results)
                wall = statistics.median(r["wall"] for r in results)
                print(
                    f"| {jobs} | {name} | {statistics.median(per):.2f} ms "
                    f"({per[0]:.2f}–{per[-1]:.2f}) | {wall:.2f} s |",
                    flush=True,
                )
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
