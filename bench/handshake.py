"""Measurement: paramiko's CPU per SSH connection, by key exchange, cipher and MAC.

Run (as root, lab packages installed): ``python -m bench.handshake [--runs 30]``.

One real sshd of the tests' lab on loopback; each variant connects, authenticates (ed25519
key), runs ``true`` through platformctl's own transport and closes, ``--runs`` times in a row.
The alias is resolved once beforehand, so ``ssh -G`` is not in the figures. CPU is this
process's (all threads: paramiko's transport thread does the key exchange).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from platformctl.collector.connector import CollectOptions, Connector
from platformctl.collector.paramiko_import import import_paramiko
from platformctl.collector.sshconfig import SshTarget
from tests.lab.topology import standard_lab

VARIANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "paramiko's defaults": {},
    "kex curve25519-sha256": {"kex": ("curve25519-sha256@libssh.org",)},
    "kex ecdh-sha2-nistp256": {"kex": ("ecdh-sha2-nistp256",)},
    "cipher aes128-gcm": {"ciphers": ("aes128-gcm@openssh.com",)},
    "cipher aes256-ctr": {"ciphers": ("aes256-ctr",)},
    "mac hmac-sha2-256-etm": {"digests": ("hmac-sha2-256-etm@openssh.com",)},
}


@dataclass
class Fixed:
    """A resolver that returns one target: no ``ssh -G`` per connection."""

    target: SshTarget

    def lookup(self, *_: object, **__: object) -> SshTarget:
        return self.target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    import_paramiko()
    import paramiko

    lab, _ = standard_lab()
    try:
        connector = Connector(CollectOptions(ssh_config=str(lab.ssh_config)))
        connector.settings.resolver = Fixed(connector.settings.resolver.lookup("alpha"))
        original = paramiko.Transport.__init__
        print("| variant | cipher, MAC negotiated | CPU per connection | wall per connection |")
        print("|---|---|---|---|")
        seen: list[paramiko.Transport] = []
        for name, prefs in VARIANTS.items():

            def preferring(self: paramiko.Transport, *a: object, _p: dict = prefs, **k: object):
                original(self, *a, **k)  # type: ignore[arg-type]
                options = self.get_security_options()
                for attr, first in _p.items():
                    rest = tuple(x for x in getattr(options, attr) if x not in first)
                    setattr(options, attr, first + rest)
                seen.append(self)

            paramiko.Transport.__init__ = preferring  # type: ignore[method-assign]
            connector("alpha").run("true")  # warm up
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.runs):
                connector("alpha").run("true")
            cpu = (time.process_time() - cpu) / args.runs
            wall = (time.perf_counter() - wall) / args.runs
            last = seen[-1]
            negotiated = (
                f"{last.kex_engine.__class__.__name__}, {last.local_cipher}, {last.local_mac}"
            )
            print(f"| {name} | {negotiated} | {cpu * 1000:.1f} ms | {wall * 1000:.0f} ms |")
        paramiko.Transport.__init__ = original  # type: ignore[method-assign]
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
