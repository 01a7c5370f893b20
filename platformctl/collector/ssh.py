"""The SSH transport: one paramiko connection and one command per host, bounded everywhere.

paramiko is imported only by the collector's SSH modules, and lazily, so ``platformctl
--version`` stays fast.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from platformctl.collector.interface import Output, TransportFailure
from platformctl.collector.knownhosts import KeyCheck, KnownHosts
from platformctl.collector.model import HostStatus
from platformctl.collector.script import MAX_OUTPUT_BYTES, MAX_STDERR_BYTES, one_line
from platformctl.collector.sshconfig import DEFAULT_IDENTITIES, SshConfigFile, SshTarget

if TYPE_CHECKING:
    import paramiko

RSA_SHA2 = ("rsa-sha2-512", "rsa-sha2-256")

# paramiko logs transport failures (with tracebacks) at ERROR; with no handler configured,
# Python's last-resort handler prints them on stderr. Every failure we care about is already
# turned into a one-line host reason, so keep paramiko quiet.
_quiet = logging.getLogger("paramiko")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass
class SshSettings:
    """What every SSH transport of one run shares: config, timeouts, known_hosts, jump hosts."""

    config: SshConfigFile
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    _known: dict[tuple[str, ...], KnownHosts] = field(default_factory=dict)
    _jumps: dict[tuple[str, ...], paramiko.Transport | TransportFailure] = field(
        default_factory=dict
    )
    _jump_locks: dict[tuple[str, ...], threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def known_hosts(self, target: SshTarget) -> KnownHosts:
        """Load each distinct set of known_hosts files once per run, shared by all threads."""
        files = target.known_hosts_files + target.global_known_hosts_files
        with self._lock:
            if files not in self._known:
                self._known[files] = KnownHosts(files)
            return self._known[files]

    def jump(
        self, chain: tuple[str, ...], opener: Callable[[tuple[str, ...]], paramiko.Transport]
    ) -> paramiko.Transport:
        """The one authenticated transport to the last hop of ``chain``, shared by every host
        behind it: one bastion login per run, not one per target (docs/design.md, "SSH"). A
        failure is remembered too, so fifty hosts behind a dead bastion do not each wait out
        its timeout.
        """
        with self._lock:
            lock = self._jump_locks.setdefault(chain, threading.Lock())
        with lock:
            known = self._jumps.get(chain)
            if isinstance(known, TransportFailure):
                raise known
            if known is not None and known.is_active():
                return known
            try:
                transport = opener(chain)
            except TransportFailure as exc:
                self._jumps[chain] = exc
                raise
            self._jumps[chain] = transport
            return transport

    def close(self) -> None:
        """Close the shared jump transports."""
        with self._lock:
            for value in self._jumps.values():
                if not isinstance(value, TransportFailure):
                    value.close()
            self._jumps.clear()


class SshTransport:
    """Runs the remote script on one host alias over SSH (ProxyJump chains included)."""

    def __init__(self, alias: str, settings: SshSettings) -> None:
        self.alias = alias
        self.settings = settings

    def run(self, script: str) -> Output:
        """Connect, authenticate, run ``sh -s`` with ``script`` on stdin, return its output."""
        target = self.settings.config.lookup(self.alias)
        timeout = self._timeout(target)
        deadline = time.monotonic() + timeout
        sock = self._route(target, timeout)
        transport = self._handshake(target, sock, deadline)
        try:
            self._authenticate(transport, target)
            return self._exec(transport, target, script)
        finally:
            transport.close()

    def _timeout(self, target: SshTarget) -> float:
        return target.connect_timeout or self.settings.connect_timeout

    def _route(self, target: SshTarget, timeout: float) -> socket.socket | paramiko.Channel:
        """A direct TCP socket, or a channel through the (shared) ProxyJump chain."""
        if not target.proxy_jump:
            return _open_socket(target, timeout)
        jump = self.settings.jump(target.proxy_jump, self._open_jump)
        return _forward(jump, target, timeout, target.proxy_jump[-1])

    def _open_jump(self, chain: tuple[str, ...]) -> paramiko.Transport:
        """Connect and authenticate to the last hop of ``chain``, through the hops before it."""
        hop = self._jump_target(chain[-1])
        timeout = self._timeout(hop)
        deadline = time.monotonic() + timeout
        if len(chain) == 1:
            sock: socket.socket | paramiko.Channel = _open_socket(hop, timeout)
        else:
            previous = self.settings.jump(chain[:-1], self._open_jump)
            sock = _forward(previous, hop, timeout, chain[-2])
        transport = self._handshake(hop, sock, deadline)
        self._authenticate(transport, hop)
        return transport

    def _jump_target(self, spec: str) -> SshTarget:
        """A ProxyJump hop: ``[user@]host[:port]``, where host may be an alias itself."""
        user, _, rest = spec.rpartition("@")
        host, port = rest, None
        if rest.count(":") == 1:
            host, port_text = rest.split(":")
            port = int(port_text) if port_text.isdigit() else None
        hop = self.settings.config.lookup(host)
        changes: dict[str, object] = {"proxy_jump": ()}
        if user:
            changes["user"] = user
        if port:
            changes["port"] = port
        return SshTarget(**{**hop.__dict__, **changes})  # type: ignore[arg-type]

    def _handshake(
        self,
        target: SshTarget,
        sock: socket.socket | paramiko.Channel,
        deadline: float,
    ) -> paramiko.Transport:
        import paramiko

        name = target.known_hosts_name
        known = self.settings.known_hosts(target)
        transport = paramiko.Transport(sock)
        preferred = known.known_types(name)
        if preferred:
            options = transport.get_security_options()
            order: list[str] = []
            for key_type in preferred:
                order.extend(RSA_SHA2 if key_type == "ssh-rsa" else (key_type,))
            available = list(options.key_types)
            ordered = [k for k in order if k in available]
            options.key_types = ordered + [k for k in available if k not in ordered]
        remaining = max(0.1, deadline - time.monotonic())
        transport.banner_timeout = remaining
        transport.handshake_timeout = remaining
        done = threading.Event()
        transport.start_client(event=done)
        # start_client(timeout=...) returns silently on timeout; wait on our own event so a
        # host that accepts TCP and never speaks costs exactly its connect timeout.
        done.wait(remaining)
        if not done.is_set() or not transport.is_active():
            exc = transport.get_exception()
            transport.close()
            where = f"{target.hostname}:{target.port}"
            if not done.is_set() or (exc and "banner" in str(exc).lower()):
                raise TransportFailure(
                    HostStatus.UNREACHABLE,
                    f"{where} accepted the connection but did not complete the SSH handshake "
                    f"within {self._timeout(target):g}s",
                )
            raise TransportFailure(
                HostStatus.UNREACHABLE,
                f"SSH negotiation with {where} failed: {one_line(str(exc)) or 'closed'}",
            )
        key = transport.get_remote_server_key()
        self._verify_host_key(target, known, key, transport)
        return transport

    def _verify_host_key(
        self,
        target: SshTarget,
        known: KnownHosts,
        key: paramiko.PKey,
        transport: paramiko.Transport,
    ) -> None:
        name = target.known_hosts_name
        verdict = known.check(name, key.get_name(), key.get_base64())
        fingerprint = key.fingerprint
        if verdict is KeyCheck.KNOWN:
            return
        strict = target.strict_host_key_checking
        if verdict is KeyCheck.UNKNOWN and strict in ("accept-new", "no"):
            if target.known_hosts_files:
                known.add(name, key.get_name(), key.get_base64(), target.known_hosts_files[0])
            return
        if verdict is KeyCheck.CHANGED and strict == "no":
            return
        transport.close()
        port_flag = f"-p {target.port} " if target.port != 22 else ""
        if verdict is KeyCheck.UNKNOWN:
            reason = (
                f"unknown host key for {name} ({fingerprint}); verify it, then add it with "
                f"'ssh-keyscan {port_flag}{target.hostname} >> ~/.ssh/known_hosts' "
                "(or set StrictHostKeyChecking accept-new for this host)"
            )
        elif verdict is KeyCheck.CHANGED:
            reason = (
                f"HOST KEY CHANGED for {name} (now {fingerprint}): someone may be intercepting "
                "the connection, or the host was reinstalled; if the change is expected, run "
                f"\"ssh-keygen -R '{name}'\" and add the new key"
            )
        else:
            reason = f"host key for {name} ({fingerprint}) is marked @revoked in known_hosts"
        raise TransportFailure(HostStatus.AUTH_FAILED, reason)

    def _authenticate(self, transport: paramiko.Transport, target: SshTarget) -> None:
        import paramiko

        transport.auth_timeout = self._timeout(target)
        tried: list[str] = []
        encrypted: list[str] = []
        for label, load in _candidate_keys(target, encrypted):
            if not transport.is_active():
                break
            key = load()
            if key is None:
                continue
            tried.append(label)
            try:
                transport.auth_publickey(target.user, key)
            except paramiko.BadAuthenticationType as exc:
                transport.close()
                raise TransportFailure(
                    HostStatus.AUTH_FAILED,
                    f"{target.user}@{target.hostname} does not accept public keys "
                    f"(allowed: {', '.join(exc.allowed_types)})",
                ) from None
            except paramiko.AuthenticationException:
                continue
            except (paramiko.SSHException, OSError, EOFError):
                break
            if transport.is_authenticated():
                return
        transport.close()
        parts = [f"authentication failed for {target.user}@{target.hostname}"]
        parts.append(f"tried {', '.join(tried)}" if tried else "no usable key found")
        if encrypted:
            parts.append(
                f"{', '.join(encrypted)} is passphrase-protected: add it to ssh-agent (ssh-add)"
            )
        raise TransportFailure(HostStatus.AUTH_FAILED, "; ".join(parts))

    def _exec(self, transport: paramiko.Transport, target: SshTarget, script: str) -> Output:
        timeout = self.settings.command_timeout
        deadline = time.monotonic() + timeout
        try:
            chan = transport.open_session(timeout=min(timeout, self._timeout(target)))
            chan.exec_command("sh -s")
            chan.sendall(script.encode())
            chan.shutdown_write()
            return _drain(chan, deadline, timeout)
        except TransportFailure:
            raise
        except Exception as exc:
            raise TransportFailure(
                HostStatus.ERROR, f"SSH command failed: {one_line(str(exc)) or type(exc).__name__}"
            ) from None


def _drain(chan: paramiko.Channel, deadline: float, timeout: float) -> Output:
    """Read stdout and stderr together until EOF, bounded by ``deadline``.

    Both streams are read as data arrives: reading stdout to EOF while the remote fills
    stderr's window deadlocks. stderr beyond its cap is read and dropped.
    """
    out: list[bytes] = []
    err: list[bytes] = []
    out_size = err_size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportFailure(
                HostStatus.ERROR, f"the remote docker command did not finish within {timeout:g}s"
            )
        # The channel's fileno becomes readable on stdout data, stderr data or EOF.
        select.select([chan], [], [], min(remaining, 1.0))
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(1 << 16)
            if err_size < MAX_STDERR_BYTES:
                err.append(data)
            err_size += len(data)
        while chan.recv_ready():
            data = chan.recv(1 << 16)
            out_size += len(data)
            if out_size > MAX_OUTPUT_BYTES:
                raise TransportFailure(
                    HostStatus.ERROR,
                    f"docker output exceeds {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB",
                )
            out.append(data)
        if (chan.eof_received or chan.closed) and not (
            chan.recv_ready() or chan.recv_stderr_ready()
        ):
            break
    # recv_exit_status() has no timeout of its own; wait on the event instead.
    chan.status_event.wait(max(0.0, min(1.0, deadline - time.monotonic())))
    return Output(b"".join(out), b"".join(err)[:MAX_STDERR_BYTES])


def _forward(
    jump: paramiko.Transport, target: SshTarget, timeout: float, via: str
) -> paramiko.Channel:
    """A ``direct-tcpip`` channel from the jump host to ``target``."""
    try:
        return jump.open_channel(
            "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0), timeout=timeout
        )
    except Exception as exc:
        raise TransportFailure(
            HostStatus.UNREACHABLE,
            f"jump host {via} cannot reach {target.hostname}:{target.port}: "
            f"{one_line(str(exc)) or type(exc).__name__}",
        ) from None


def _open_socket(target: SshTarget, timeout: float) -> socket.socket:
    where = f"{target.hostname}:{target.port}"
    try:
        return socket.create_connection((target.hostname, target.port), timeout=timeout)
    except socket.gaierror as exc:
        raise TransportFailure(
            HostStatus.UNREACHABLE, f"cannot resolve {target.hostname}: {exc.strerror}"
        ) from None
    except ConnectionRefusedError:
        raise TransportFailure(HostStatus.UNREACHABLE, f"connection refused by {where}") from None
    except TimeoutError:
        raise TransportFailure(
            HostStatus.UNREACHABLE, f"no answer from {where} within {timeout:g}s"
        ) from None
    except OSError as exc:
        raise TransportFailure(
            HostStatus.UNREACHABLE, f"cannot connect to {where}: {exc.strerror or exc}"
        ) from None


def _constant(key: paramiko.PKey) -> Callable[[], paramiko.PKey | None]:
    return lambda: key


def _candidate_keys(
    target: SshTarget, encrypted: list[str]
) -> list[tuple[str, Callable[[], paramiko.PKey | None]]]:
    """Agent keys first (unless IdentitiesOnly), then IdentityFile or the default key files."""
    import paramiko

    candidates: list[tuple[str, Callable[[], paramiko.PKey | None]]] = []
    if not target.identities_only and os.environ.get("SSH_AUTH_SOCK"):
        try:
            agent_keys = paramiko.Agent().get_keys()
        except Exception:
            agent_keys = ()
        for i, key in enumerate(agent_keys):
            candidates.append((f"agent key {i + 1}", _constant(key)))
    files = target.identity_files or tuple(os.path.expanduser(p) for p in DEFAULT_IDENTITIES)

    def loader(path: str) -> Callable[[], paramiko.PKey | None]:
        def load() -> paramiko.PKey | None:
            try:
                return paramiko.PKey.from_path(path)
            except paramiko.PasswordRequiredException:
                encrypted.append(path)
            except TypeError as exc:
                # cryptography raises TypeError for an encrypted OpenSSH-format key.
                if "password" in str(exc).lower():
                    encrypted.append(path)
            except (OSError, paramiko.SSHException, ValueError):
                pass
            return None

        return load

    for path in files:
        if os.path.isfile(path):
            candidates.append((path, loader(path)))
    return candidates
