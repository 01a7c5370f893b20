"""Measurement: paramiko's CPU per SSH connection, by key exchange, cipher and MAC.

Run (as root, lab packages installed): ``python -m bench.handshake [--runs 30] [--answer-kb 150]``.

One real sshd of the tests' lab on loopback; each variant connects, authenticates (ed25519
key), runs a command through platformctl's own transport and closes, ``--runs`` times in a
row. The command prints ``--answer-kb`` KiB (150 by default: what a host of 20 containers
answers; 0 runs ``true``, the handshake alone). The alias is resolved once beforehand, so
``ssh -G`` is not in the figures. CPU is this process's (all threads: paramiko's transport
thread does the key exchange and reads the packets).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from platformctl.collector.connector import CollectOptions, Connector
from platformctl.collector.paramiko_import import import_paramiko
from platformctl.collector.sshconfig import SshTarget
from tests.lab.topology import standard_lab

# Each variant: preferences put first, and whether platformctl puts AES-GCM first afterwards
# (as every run does) or leaves paramiko's own cipher order.
VARIANTS: dict[str, tuple[dict[str, tuple[str, ...]], bool]] = {
    "platformctl's order (AES-GCM first)": ({}, True),
    "paramiko's order (aes128-ctr, HMAC)": ({}, False),
    "kex curve25519-sha256, AES-GCM": ({"kex": ("curve25519-sha256@libssh.org",)}, True),
    "kex ecdh-sha2-nistp256, AES-GCM": ({"kex": ("ecdh-sha2-nistp256",)}, True),
    "cipher aes256-gcm": ({"ciphers": ("aes256-gcm@openssh.com",)}, False),
    "cipher aes256-ctr, HMAC": ({"ciphers": ("aes256-ctr",)}, False),
    "mac hmac-sha2-256-etm, aes128-ctr": ({"digests": ("hmac-sha2-256-etm@openssh.com",)}, False),
}


@dataclass
class Fixed:
    """A resolver that returns one target: no ``ssh -G`` per connection."""

    target: SshTarget

    def lookup(self, *_: object, **__: object) -> SshTarget:
        return self.target

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--answer-kb", type=int, default=150, help="KiB the command prints")
    args = parser.parse_args()
    command = f"head -c {args.answer_kb * 1024} /dev/zero" if args.answer_kb else "true"
    from platformctl.collector import ssh

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
        original_aead = ssh.AEAD_CIPHERS
        for name, (prefs, aead_first) in VARIANTS.items():
            ssh.AEAD_CIPHERS = original_aead if aead_first else ()

            def preferring(self: paramiko.Transport, *a: object, _p: dict = prefs, **k: object):
                original(self, *a, **k)  # type: ignore[arg-type]
                options = self.get_security_options()
                for attr, first in _p.items():
                    rest = tuple(x for x in getattr(options, attr) if x not in first)
                    setattr(options, attr, first + rest)
                seen.append(self)

            paramiko.Transport.__init__ = preferring  # type: ignore[method-assign]
            connector("alpha").run(command)  # warm up
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.runs):
                connector("alpha").run(command)
            cpu = (time.process_time() - cpu) / args.runs
            wall = (time.perf_counter() - wall) / args.runs
            last = seen[-1]
            aead = "gcm" in str(last.local_cipher)
            negotiated = f"{last.local_cipher}, {'no MAC (AEAD)' if aead else last.local_mac}"
            print(f"| {name} | {negotiated} | {cpu * 1000:.1f} ms | {wall * 1000:.0f} ms |")
        paramiko.Transport.__init__ = original  # type: ignore[method-assign]
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
