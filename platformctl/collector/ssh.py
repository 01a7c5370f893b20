"""The SSH transport: one paramiko connection and one command per host, bounded everywhere.

paramiko is imported only by the collector's SSH modules, and lazily, so ``platformctl
--version`` stays fast.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import logging
import os
import select
import shlex
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from platformctl.collector.interface import Output, TransportFailure
from platformctl.collector.knownhosts import KeyCheck, KeyDecision, KnownHosts, host_key_decision
from platformctl.collector.model import HostStatus
from platformctl.collector.paramiko_import import import_paramiko
from platformctl.collector.script import MAX_OUTPUT_BYTES, MAX_STDERR_BYTES, one_line
from platformctl.collector.sshconfig import DEFAULT_IDENTITIES, Resolver, SshTarget
from platformctl.collector.sshtokens import (
    PROXY_COMMAND_TOKENS,
    TokenError,
    TokenValues,
    expand_tokens,
    home_dir,
)
from platformctl.errors import UsageError

if TYPE_CHECKING:
    import paramiko
    from _typeshed import ReadableBuffer

    Socket: TypeAlias = "socket.socket | paramiko.Channel | _ProxySocket"

RSA_SHA2 = ("rsa-sha2-512", "rsa-sha2-256")
AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
MAX_HOPS = 8
"""ProxyJump hops followed before a chain is taken for a loop."""
JumpKey: TypeAlias = tuple[str, str]
"""A jump host as ssh would run it: its ``[user@]host[:port]`` and the hops before it."""

# paramiko logs transport failures (with tracebacks) at ERROR; with no handler configured,
# Python's last-resort handler prints them on stderr. Every failure we care about is already
# turned into a one-line host reason, so keep paramiko quiet.
_quiet = logging.getLogger("paramiko")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass
class SshSettings:
    """What every SSH transport of one run shares: resolver, timeouts, known_hosts, jump hosts."""

    resolver: Resolver
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    _known: dict[tuple[str, ...], KnownHosts] = field(default_factory=dict)
    _jumps: dict[JumpKey, paramiko.Transport | TransportFailure] = field(default_factory=dict)
    _jump_locks: dict[JumpKey, threading.RLock] = field(default_factory=dict)
    _keys: dict[str, tuple[paramiko.PKey | None, bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _key_lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def known_hosts(self, target: SshTarget) -> KnownHosts:
        """Load each distinct set of known_hosts files once per run, shared by all threads."""
        files = target.known_hosts_files + target.global_known_hosts_files
        with self._lock:
            if files not in self._known:
                self._known[files] = KnownHosts(files)
            return self._known[files]

    def private_key(self, path: str) -> tuple[paramiko.PKey | None, bool]:
        """The key in ``path`` (None when unusable) and whether it is passphrase-protected,
        read once per run: every host offers the same files, and parsing one costs a tenth
        of a handshake."""
        with self._key_lock:
            if path not in self._keys:
                self._keys[path] = _read_private_key(path)
            return self._keys[path]

    def jump(self, key: JumpKey, opener: Callable[[], paramiko.Transport]) -> paramiko.Transport:
        """The one authenticated transport to the jump host ``key`` names, shared by every host
        behind it: one bastion login per run, not one per target (docs/ssh.md). A failure is
        remembered too, so fifty hosts behind a dead bastion do not each wait out its timeout.
        """
        with self._lock:
            # Re-entrant: a ProxyJump loop comes back to the same key in the same thread and
            # must reach the depth check, not deadlock.
            lock = self._jump_locks.setdefault(key, threading.RLock())
        with lock:
            with self._lock:
                self._check_open()
                known = self._jumps.get(key)
            if isinstance(known, TransportFailure):
                raise known
            if known is not None and known.is_active():
                return known
            if known is not None:  # it died: its ProxyCommand is ended before a new one
                _end(known)
            try:
                transport = opener()
            except TransportFailure as exc:
                with self._lock:
                    self._jumps[key] = exc
                raise
            with self._lock:
                if not self._closed:
                    self._jumps[key] = transport
                    return transport
            _end(transport)  # the run closed while it was opened: nobody would close it
            raise _run_closed()

    def _check_open(self) -> None:
        if self._closed:
            raise _run_closed()

    def close(self) -> None:
        """Close the shared jump transports, each before the one it was reached through, and
        end a ProxyCommand that reaches one: its process reaped and its pipes closed now, not
        by the garbage collector. No bastion is opened for this run after it."""
        with self._lock:
            self._closed = True
            opened = [v for v in self._jumps.values() if not isinstance(v, TransportFailure)]
            self._jumps.clear()
        for transport in reversed(opened):
            _end(transport)


def _end(transport: paramiko.Transport) -> None:
    """Close ``transport`` and, when it runs over a ProxyCommand, end and release that."""
    transport.close()
    if isinstance(transport.sock, _ProxySocket):
        transport.sock.release()


def _run_closed() -> TransportFailure:
    return TransportFailure(HostStatus.ERROR, "the run ended before this host was collected")


class SshTransport:
    """Runs the remote script on one host alias over SSH (ProxyJump chains included)."""

    def __init__(self, alias: str, settings: SshSettings) -> None:
        self.alias = alias
        self.settings = settings

    def run(self, script: str) -> Output:
        """Connect, authenticate, run ``sh -s`` with ``script`` on stdin, return its output."""
        target = self._resolve(self.alias)
        timeout = effective_timeout(target, self.settings.connect_timeout)
        deadline = time.monotonic() + timeout
        sock = self._route(target, timeout, 0)
        try:
            transport = self._handshake(target, sock, deadline)
            try:
                self._authenticate(transport, target)
                return self._exec(transport, target, script)
            finally:
                transport.close()
        finally:
            if isinstance(sock, _ProxySocket):
                sock.release()

    def _resolve(
        self, alias: str, user: str | None = None, port: int | None = None, jump: str | None = None
    ) -> SshTarget:
        try:
            return self.settings.resolver.lookup(alias, user, port, jump)
        except UsageError as exc:
            # Never contacted: a host its ssh config does not let us reach is unreachable,
            # not one that answered and whose Docker state could not be read.
            raise TransportFailure(HostStatus.UNREACHABLE, str(exc)) from None

    def _route(self, target: SshTarget, timeout: float, depth: int) -> Socket:
        """A direct TCP socket, the ``ProxyCommand``'s pipes, or a channel through the (shared)
        last ProxyJump hop."""
        if target.proxy_command:
            return _start_proxy(target)
        if not target.proxy_jump:
            return _open_socket(target, timeout)
        if depth >= MAX_HOPS:
            raise TransportFailure(
                HostStatus.UNREACHABLE,
                f"ProxyJump for {target.alias} goes deeper than {MAX_HOPS} hops (a loop?)",
            )
        spec = target.proxy_jump[-1]
        before = ",".join(target.proxy_jump[:-1]) or None
        jump = self.settings.jump(
            (spec, before or ""), lambda: self._open_hop(spec, before, depth + 1)
        )
        return _forward(jump, target, timeout, jump_name(spec))

    def _open_hop(self, spec: str, before: str | None, depth: int) -> paramiko.Transport:
        """Connect and authenticate to a ProxyJump hop ``[user@]host[:port]``, resolved with its
        own config as ssh resolves it (``ssh -l user -p port -J before host``): a bastion's own
        ProxyJump is followed when it is the first hop."""
        user, host, port = parse_jump(spec)
        try:
            hop = self._resolve(host, user, port, before)
            timeout = effective_timeout(hop, self.settings.connect_timeout)
            deadline = time.monotonic() + timeout
            sock = self._route(hop, timeout, depth)
            try:
                transport = self._handshake(hop, sock, deadline)
                self._authenticate(transport, hop)
            except BaseException:  # as run() does for a host: the hop is not kept
                if isinstance(sock, _ProxySocket):
                    sock.release()
                raise
        except TransportFailure as exc:
            if exc.reason.startswith("via bastion "):
                raise
            raise TransportFailure(exc.status, f"via bastion {host}: {exc.reason}") from None
        return transport

    def _handshake(
        self,
        target: SshTarget,
        sock: Socket,
        deadline: float,
    ) -> paramiko.Transport:
        # The first paramiko use of a connection (with _start_proxy): import it without invoke
        # (docs/design.md, "Start-up"); later uses find it loaded.
        import_paramiko()

        known = self.settings.known_hosts(target)
        # _ProxySocket is socket-like (send, recv, settimeout, close), all paramiko uses.
        transport = _transport_class()(sock)  # type: ignore[arg-type]
        try:
            return self._negotiate(target, sock, transport, known, deadline)
        except BaseException:  # whatever went wrong, its thread must not read on
            transport.close()
            raise

    def _negotiate(
        self,
        target: SshTarget,
        sock: Socket,
        transport: paramiko.Transport,
        known: KnownHosts,
        deadline: float,
    ) -> paramiko.Transport:
        name = target.known_hosts_name
        if isinstance(sock, _ProxySocket):
            sock.reader = transport
        options = transport.get_security_options()
        # AES-GCM first when the server has it: an AEAD cipher needs no separate MAC, which
        # paramiko computes in Python for every packet; about a tenth of a host's CPU with
        # the usual ~150 KB answer (bench/README.md). The rest of paramiko's order follows.
        aead = tuple(c for c in AEAD_CIPHERS if c in options.ciphers)
        options.ciphers = aead + tuple(c for c in options.ciphers if c not in aead)
        preferred = known.known_types(name)
        if preferred:
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
            if isinstance(sock, _ProxySocket):
                reason = sock.failure()
                transport.close()
                raise TransportFailure(HostStatus.UNREACHABLE, reason)
            transport.close()
            where = f"{target.hostname}:{target.port}"
            if not done.is_set() or (exc and "banner" in str(exc).lower()):
                raise TransportFailure(
                    HostStatus.UNREACHABLE,
                    f"{where} accepted the connection but did not complete the SSH handshake "
                    f"within {effective_timeout(target, self.settings.connect_timeout):g}s",
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
        decision = host_key_decision(verdict, target.strict_host_key_checking)
        if decision is KeyDecision.ACCEPT:
            return
        if decision is KeyDecision.RECORD:
            if target.known_hosts_files:
                path = target.known_hosts_files[0]
                try:
                    known.add(
                        name, key.get_name(), key.get_base64(), path, hashed=target.hash_known_hosts
                    )
                except OSError as exc:
                    transport.close()
                    raise TransportFailure(
                        HostStatus.AUTH_FAILED,
                        f"cannot record the new host key of {name} ({fingerprint}) in {path}: "
                        f"{exc.strerror or exc} (StrictHostKeyChecking accept-new records new "
                        "keys there); make it writable",
                    ) from None
            return
        transport.close()
        if verdict is KeyCheck.UNKNOWN:
            alias = (
                f", then put {name} (the HostKeyAlias) in place of the host name in that line"
                if target.host_key_alias
                else ""
            )
            reason = (
                f"unknown host key for {name} ({fingerprint}); verify it, then add it with "
                f"'{keyscan_hint(target)}'{alias} "
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
        transport.auth_timeout = effective_timeout(target, self.settings.connect_timeout)
        tried: list[str] = []
        encrypted: list[str] = []
        agent = _agent_for(target)
        try:
            self._try_keys(transport, target, agent, tried, encrypted)
        finally:
            if agent is not None:
                agent.close()
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

    def _try_keys(
        self,
        transport: paramiko.Transport,
        target: SshTarget,
        agent: _SocketAgent | None,
        tried: list[str],
        encrypted: list[str],
    ) -> None:
        """Offer keys in OpenSSH's order; returns once authenticated or out of keys."""
        import paramiko

        for label, load in _candidate_keys(target, agent, encrypted, self.settings):
            if not transport.is_active():
                return
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
            except paramiko.AuthenticationException as exc:
                if "timeout" in str(exc).lower():
                    transport.close()
                    raise TransportFailure(
                        HostStatus.AUTH_FAILED,
                        f"{target.user}@{target.hostname} did not answer authentication within "
                        f"{transport.auth_timeout:g}s",
                    ) from None
                continue
            except (paramiko.SSHException, OSError, EOFError):
                return
            if transport.is_authenticated():
                return

    def _exec(self, transport: paramiko.Transport, target: SshTarget, script: str) -> Output:
        timeout = self.settings.command_timeout
        deadline = time.monotonic() + timeout
        try:
            chan = transport.open_session(
                timeout=min(timeout, effective_timeout(target, self.settings.connect_timeout))
            )
            try:
                chan.exec_command("sh -s")
                chan.sendall(script.encode())
                chan.shutdown_write()
                return _drain(chan, deadline, timeout)
            finally:
                chan.close()
        except TransportFailure:
            raise
        except Exception as exc:
            raise TransportFailure(
                HostStatus.ERROR, f"SSH command failed: {one_line(str(exc)) or type(exc).__name__}"
            ) from None


@functools.cache
def _transport_class() -> type[paramiko.Transport]:
    """paramiko's ``Transport`` without the work it does for debug lines no handler shows
    (docs/design.md, "SSH"). Made once paramiko is imported: it is imported lazily."""
    import paramiko

    class QuietTransport(paramiko.Transport):
        def _log(self, level: int, msg: object, *args: object) -> None:
            # paramiko has formatted the line by now: what is spared is the logging call
            # (three dozen a connection) and the logging module's own checks.
            if self.logger.isEnabledFor(level):
                super()._log(level, msg, *args)  # type: ignore[misc]

        def _parse_debug(self, m: paramiko.Message) -> None:
            # sshd sends a debug message at every key login (the key's options), and paramiko
            # escapes it a byte at a time in Python for its log: 45 µs a connection.
            if self.logger.isEnabledFor(logging.DEBUG):
                super()._parse_debug(m)  # type: ignore[misc]

        def _filter_algorithm(self, type_: str) -> tuple[str, ...]:
            # Each read of a preferred_* list filters it against disabled_algorithms, 16 times
            # a connection; platformctl disables none.
            if self.disabled_algorithms:
                return super()._filter_algorithm(type_)  # type: ignore[misc,no-any-return]
            return tuple(getattr(self, f"_preferred_{type_}"))

    return QuietTransport


# A channel's reading thread is woken at least every this many packets of its output: at
# paramiko's 32 KiB a packet at most, 512 KiB, a quarter of the 2 MiB window the host may send
# before it must wait for the thread to read.
_WAKE_EVERY = 16


class _Wake:
    """Wakes the thread reading a channel at the end of its output, not at every packet.

    paramiko sets the event of a channel's buffer at every packet it feeds it; given as both
    buffers' event, this one wakes the reading thread only once the output has ended (EOF or
    the channel closed) or every :data:`_WAKE_EVERY` packets, so the window never fills while
    the thread sleeps. Each wake-up is a switch of the interpreter lock, and select() on the
    channel cost a pipe write for every packet as well (docs/design.md, "SSH")."""

    def __init__(self, chan: paramiko.Channel) -> None:
        self.event = threading.Event()
        # Weak: the channel's buffers hold this object, which would otherwise make the
        # channel a cycle that only the (seldom run) garbage collector frees.
        self._chan = weakref.ref(chan)
        self._fed = 0

    def set(self) -> None:
        # Called by paramiko when a buffer is fed or closed (the connection's own thread) and
        # when a buffer is given this event (the reading thread). The two buffers have locks
        # of their own, so a count may be lost now and then: a wake-up comes a packet later.
        self._fed += 1
        chan = self._chan()
        if chan is None or self._fed % _WAKE_EVERY == 0 or chan.eof_received or chan.closed:
            self.event.set()

    def clear(self) -> None:
        """Called by a buffer read empty: the reading thread clears :attr:`event` itself, as
        the other buffer may still hold output."""


def _drain(chan: paramiko.Channel, deadline: float, timeout: float) -> Output:
    """Read stdout and stderr together until EOF, bounded by ``deadline``.

    Both streams are read as data arrives: reading stdout to EOF while the remote fills
    stderr's window deadlocks. stderr beyond its cap is read and dropped.
    """
    out: list[bytes] = []
    err: list[bytes] = []
    out_size = err_size = 0
    wake = _Wake(chan)
    chan.in_buffer.set_event(wake)  # type: ignore[arg-type]
    chan.in_stderr_buffer.set_event(wake)  # type: ignore[arg-type]
    # What came before the event was given is read at once: it was not counted, and up to a
    # whole window of it may be waiting.
    wake.event.set()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportFailure(
                HostStatus.ERROR, f"the remote docker command did not finish within {timeout:g}s"
            )
        wake.event.wait(min(remaining, 1.0))
        # Cleared before reading: a 16th packet, EOF or a close from here on sets it again.
        wake.event.clear()
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


def keyscan_hint(target: SshTarget) -> str:
    """The command that records ``target``'s host key in the file ssh reads (and records new
    keys in) first: its first ``UserKnownHostsFile``."""
    file = target.known_hosts_files[0] if target.known_hosts_files else "~/.ssh/known_hosts"
    home = home_dir().rstrip("/") + "/"
    shown = "~/" + shlex.quote(file[len(home) :]) if file.startswith(home) else shlex.quote(file)
    port_flag = f"-p {target.port} " if target.port != 22 else ""
    return f"ssh-keyscan {port_flag}{target.hostname} >> {shown}"


def effective_timeout(target: SshTarget, default: float) -> float:
    """The connect timeout for ``target``: its own ``ConnectTimeout`` wins over
    ``--connect-timeout``, which is only the default (README)."""
    return target.connect_timeout or default


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` (or an ``ssh://`` URI) of a ProxyJump hop as user, host, port."""
    if spec.startswith("ssh://"):
        spec = spec[len("ssh://") :]
    user, _, rest = spec.rpartition("@")
    host, port = rest, None
    if rest.startswith("[") and "]" in rest:
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
        port = int(port_text) if port_text.isdigit() else None
    return user or None, host, port


def jump_name(spec: str) -> str:
    """The host part of a ProxyJump hop, as reasons name it."""
    return parse_jump(spec)[1]


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
            f"via bastion {via}: cannot reach {target.hostname}:{target.port}: "
            f"{one_line(str(exc)) or type(exc).__name__}",
        ) from None


def _open_socket(target: SshTarget, timeout: float) -> socket.socket:
    where = f"{target.hostname}:{target.port}"
    try:
        return _prompt(socket.create_connection((target.hostname, target.port), timeout=timeout))
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


# Linux only; elsewhere the kernel's delayed acknowledgements stay as they are.
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class _PromptSocket(socket.socket):
    """A TCP socket that acknowledges what it receives at once and reads ahead
    (docs/design.md, "SSH").

    sshd writes a host's answer in several small writes; Nagle's algorithm holds each one back
    until the one before is acknowledged, and Linux delays that acknowledgement (40 ms at
    least, up to 200 ms on slow paths) when we have nothing to send. Quick-ack mode is not
    sticky (a send of ours puts the kernel back to delaying), so it is set again after every
    read from the kernel and, after a send, before the next packet is handed out: setting it
    also sends an acknowledgement that is pending.

    paramiko reads only through :meth:`recv`, asking for a packet's first block and then for
    its rest, each ask a ``poll`` and a ``recv`` that give up the interpreter lock. Reading
    what the kernel holds, up to :data:`_READ_AHEAD` bytes, and handing it out from here
    makes one system call of a burst of packets. paramiko writes only through :meth:`send`.
    """

    _ahead = b""
    _offset = 0
    _sent = False

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if flags:  # MSG_PEEK would hand the same bytes out twice, MSG_WAITALL wait for 64 KiB
            raise ValueError("a read-ahead socket takes no recv flags")
        ahead, offset = self._ahead, self._offset
        if offset < len(ahead):
            end = min(offset + bufsize, len(ahead))
            if end == len(ahead):
                self._ahead, self._offset = b"", 0  # not kept once handed out
            else:
                self._offset = end
            if self._sent:
                self._quickack()
            return ahead[offset:end]
        # Nothing held here (what was read ahead is dropped once handed out): ask the kernel.
        data = super().recv(max(bufsize, _READ_AHEAD))
        if data:
            self._quickack()
        if len(data) > bufsize:
            self._ahead, self._offset = data, bufsize
            return data[:bufsize]
        return data

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        sent = super().send(data, flags)
        # The reader sets quick-ack mode again before it hands out the next packet.
        self._sent = True
        return sent

    def _quickack(self) -> None:
        self._sent = False
        if _TCP_QUICKACK is not None:
            with contextlib.suppress(OSError):
                self.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


# Enough for a few full SSH packets (sshd sends at most 32 KiB of data in one).
_READ_AHEAD = 1 << 16


def _prompt(sock: socket.socket) -> socket.socket:
    """``sock`` (a connected TCP socket) with Nagle's algorithm off and as a
    :class:`_PromptSocket`: paramiko writes each SSH packet whole, and holding a small one back
    for the acknowledgement of the last costs a delayed-acknowledgement wait several times per
    connection."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    timeout = sock.gettimeout()
    family, kind, proto = sock.family, sock.type, sock.proto
    fd = sock.detach()
    try:
        prompt = _PromptSocket(family, kind, proto, fileno=fd)
    except BaseException:  # the descriptor belongs to no socket object here
        os.close(fd)
        raise
    prompt.settimeout(timeout)
    return prompt


def _constant(key: paramiko.PKey) -> Callable[[], paramiko.PKey | None]:
    return lambda: key


def _start_proxy(target: SshTarget) -> _ProxySocket:
    """Run the host's ``ProxyCommand`` as ssh does (``$SHELL -c 'exec COMMAND'``), its tokens
    expanded from resolved values only: the alias was checked to be alias-shaped, the rest
    comes from the user's own config."""
    import_paramiko()
    import paramiko

    values = TokenValues(target.hostname, target.port, target.user, target.alias)
    try:
        command = expand_tokens(target.proxy_command or "", values, PROXY_COMMAND_TOKENS)
    except TokenError as exc:
        raise TransportFailure(
            HostStatus.ERROR, f"ProxyCommand for {target.alias}: {exc}"
        ) from None
    shell = os.environ.get("SHELL") or "/bin/sh"
    try:
        proxy = paramiko.ProxyCommand(shlex.join([shell, "-c", f"exec {command}"]))
    except Exception as exc:
        raise TransportFailure(
            HostStatus.UNREACHABLE, f"ProxyCommand for {target.alias} did not start: {exc}"
        ) from None
    return _ProxySocket(proxy)


# How long a proxy command is given to exit after each signal.
_PROXY_EXIT = 0.5


class _ProxySocket:
    """paramiko's ``ProxyCommand`` as the transport's socket, plus its stderr: drained as it
    comes (a chatty proxy must not block on a full pipe), its beginning kept for the reason.
    ``close`` tolerates a proxy that has already exited (paramiko's raises
    ProcessLookupError from its transport thread then)."""

    def __init__(self, proxy: paramiko.ProxyCommand) -> None:
        self.proxy = proxy
        self.reader: threading.Thread | None = None
        """The thread that reads and writes the pipes (the transport's), once there is one."""
        self.errors: list[bytes] = []
        self._drainer = threading.Thread(target=self._drain, daemon=True, name="proxy-stderr")
        self._drainer.start()

    def _drain(self) -> None:
        stream = self.proxy.process.stderr
        size = 0
        while stream is not None:
            try:
                data = os.read(stream.fileno(), 4096)
            except (OSError, ValueError):
                return
            if not data:
                return
            if size < 4096:
                self.errors.append(data)
            size += len(data)

    def send(self, content: bytes) -> int:
        """Write to the proxy's stdin."""
        return int(self.proxy.send(content))

    def recv(self, size: int) -> bytes:
        """What the proxy's stdout holds, up to ``size`` bytes, as a socket reads; ``b""`` once
        it has ended. (paramiko's own read waits for all ``size`` bytes, and at the end reads
        nothing again and again until its timeout: a busy loop once the proxy has exited.)"""
        from paramiko.ssh_exception import ProxyCommandFailure

        stdout = self.proxy.process.stdout
        if stdout is None:
            return b""
        try:
            ready, _, _ = select.select([stdout], [], [], self.proxy.timeout)
            data = os.read(stdout.fileno(), size) if ready else None
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ProxyCommandFailure(" ".join(self.proxy.cmd), reason) from None
        if data is None:
            raise TimeoutError()  # what a socket raises (socket.timeout), paramiko waits on
        return data

    def settimeout(self, timeout: float) -> None:
        """Timeout of :meth:`recv`."""
        self.proxy.settimeout(timeout)

    @property
    def closed(self) -> bool:
        """Whether the proxy is closed."""
        return bool(self.proxy.closed)

    @property
    def _closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        """End the proxy command: SIGTERM, then SIGKILL if it is still there after a moment,
        and reap it (paramiko's close only signals it, and leaves the exited child to the
        garbage collector). The pipes stay open: the transport's thread may be reading them
        (see :meth:`release`)."""
        process = self.proxy.process
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proxy.close()
        try:
            process.wait(timeout=_PROXY_EXIT)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_PROXY_EXIT)

    def release(self) -> None:
        """End the proxy command and close its three pipes, once the transport's thread
        (:attr:`reader`) has stopped: a descriptor closed under a thread still using it could
        be reused by another host's connection meanwhile. A thread that does not stop within
        a moment leaves the pipes to the garbage collector."""
        self.close()
        if self.reader is not None and self.reader.ident is not None:
            self.reader.join(_PROXY_EXIT)
            if self.reader.is_alive():
                return
        self._drainer.join(_PROXY_EXIT)
        if self._drainer.is_alive():
            return
        process = self.proxy.process
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def failure(self) -> str:
        """Why the connection through the proxy failed: its stderr's first line, else its
        exit status."""
        try:
            status: int | None = self.proxy.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            status = None
        self._drainer.join(0.5)
        text = b"".join(self.errors).decode("utf-8", "replace")
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        if first:
            return f"ProxyCommand failed: {one_line(first)}"
        if status is not None:
            return f"ProxyCommand exited with status {status} before the SSH handshake"
        return "ProxyCommand did not complete the SSH handshake"


def _agent_for(target: SshTarget) -> _SocketAgent | None:
    """The agent ``IdentityAgent`` names (``SSH_AUTH_SOCK`` or a ``$VAR``: from the
    environment), connected; ``None`` when there is none or it does not answer."""
    where = target.identity_agent
    if where is None:
        return None
    if where == "SSH_AUTH_SOCK":
        where = os.environ.get("SSH_AUTH_SOCK") or ""
    elif where.startswith("$"):
        where = os.environ.get(where[1:].strip("{}")) or ""
    if not where:
        return None
    try:
        return _SocketAgent(where)
    except Exception:
        return None


def order_identities(
    agent: Sequence[bytes], files: Sequence[bytes | None], identities_only: bool
) -> list[tuple[str, int]]:
    """The order OpenSSH offers keys in (``pubkey_prepare``): agent keys in the agent's order,
    those that are also an ``IdentityFile`` counted as that file; other agent keys only
    without ``IdentitiesOnly``; then the remaining files in config order. Items are
    ``("agent", i)`` or ``("file", j)``; ``files`` holds each file's public key blob if known.
    """
    remaining = list(range(len(files)))
    order: list[tuple[str, int]] = []
    for a, blob in enumerate(agent):
        match = next((f for f in remaining if files[f] == blob), None)
        if match is not None:
            remaining.remove(match)
            order.append(("agent", a))
        elif not identities_only:
            order.append(("agent", a))
    order.extend(("file", f) for f in remaining)
    return order


def _public_blob(path: str) -> bytes | None:
    """The public key blob of a key file, from ``PATH.pub`` (no passphrase needed)."""
    try:
        fields = Path(f"{path}.pub").read_text(encoding="utf-8", errors="replace").split()
        return base64.b64decode(fields[1]) if len(fields) >= 2 else None
    except (OSError, binascii.Error, ValueError):
        return None


def _candidate_keys(
    target: SshTarget, agent: _SocketAgent | None, encrypted: list[str], settings: SshSettings
) -> list[tuple[str, Callable[[], paramiko.PKey | None]]]:
    """Keys to offer, in OpenSSH's order (:func:`order_identities`): IdentityFile, or the
    default key files when the config names none."""
    agent_keys = list(agent.get_keys()) if agent is not None else []
    files = target.identity_files or tuple(os.path.expanduser(p) for p in DEFAULT_IDENTITIES)
    # A file given only as its public half (PATH.pub, the private key in an agent or a
    # password manager) still counts, as in OpenSSH.
    files = tuple(f for f in files if os.path.isfile(f) or os.path.isfile(f"{f}.pub"))

    def loader(path: str) -> Callable[[], paramiko.PKey | None]:
        def load() -> paramiko.PKey | None:
            key, protected = settings.private_key(path)
            if protected:
                encrypted.append(path)
            return key

        return load

    blobs = [_public_blob(f) if agent_keys else None for f in files]
    candidates: list[tuple[str, Callable[[], paramiko.PKey | None]]] = []
    agent_blobs = [k.asbytes() for k in agent_keys]
    for kind, i in order_identities(agent_blobs, blobs, target.identities_only):
        if kind == "agent":
            candidates.append((f"agent key {i + 1}", _constant(agent_keys[i])))
        elif os.path.isfile(files[i]):
            candidates.append((files[i], loader(files[i])))
    return candidates


def _read_private_key(path: str) -> tuple[paramiko.PKey | None, bool]:
    """The key in ``path`` (None when it cannot be used) and whether a passphrase is why."""
    import paramiko

    try:
        return paramiko.PKey.from_path(path), False
    except paramiko.PasswordRequiredException:
        return None, True
    except TypeError as exc:
        # cryptography raises TypeError for an encrypted OpenSSH-format key.
        return None, "password" in str(exc).lower()
    except (OSError, paramiko.SSHException, ValueError):
        return None, False


class _SocketAgent:
    """An ssh-agent at a given socket path (paramiko's ``Agent`` reads only SSH_AUTH_SOCK)."""

    def __init__(self, path: str) -> None:
        from paramiko.agent import AgentSSH

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        sock.connect(path)
        self._agent = AgentSSH()
        # AgentSSH's connect step is not public; Agent() would read only SSH_AUTH_SOCK.
        self._agent._connect(sock)  # type: ignore[attr-defined]

    def get_keys(self) -> tuple[paramiko.AgentKey, ...]:
        """The agent's keys, read when connecting."""
        return tuple(self._agent.get_keys())

    def close(self) -> None:
        """Close the agent connection."""
        self._agent._close()  # type: ignore[attr-defined]
