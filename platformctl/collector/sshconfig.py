"""Resolve a host alias through ``~/.ssh/config`` into everything needed to connect.

paramiko's ``SSHConfig`` parses the file but leaves a lot to its caller: it does not
process ``Include`` (paramiko/paramiko#1609), returns values as strings, does not ``~``-expand
``UserKnownHostsFile``, and applies neither ``ConnectTimeout`` nor ``StrictHostKeyChecking``.
This module does those parts.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from platformctl.errors import UsageError
from platformctl.paths import user_path

MAX_INCLUDE_DEPTH = 16
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
# OpenSSH 9's default identities, in its order (ssh_config(5), IdentityFile); the -sk and xmss
# ones are listed for fidelity, paramiko cannot load them and skips them.
DEFAULT_IDENTITIES = (
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
)
_INCLUDE_RE = re.compile(r"^\s*include(?:\s*=\s*|\s+)(.+)$", re.I)


@dataclass(frozen=True)
class SshTarget:
    """Connection settings for one alias, after ssh config lookup."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    identities_only: bool
    proxy_jump: tuple[str, ...]
    connect_timeout: float | None
    known_hosts_files: tuple[str, ...]
    global_known_hosts_files: tuple[str, ...]
    strict_host_key_checking: str
    """``yes`` (default), ``accept-new`` or ``no`` (``ask`` and ``off`` as OpenSSH maps them)."""
    proxy_command: str | None = None
    """``ProxyCommand`` as written (tokens unexpanded); ``None`` for a direct connection."""
    identity_agent: str | None = "SSH_AUTH_SOCK"
    """The agent socket: a path, ``SSH_AUTH_SOCK`` (the environment's) or ``None`` (no agent)."""
    host_key_alias: str | None = None
    hash_known_hosts: bool = False
    """``HashKnownHosts``: keys recorded under ``accept-new`` get a hashed name."""

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts files use for this host: ``HostKeyAlias`` when set (as
        OpenSSH, without the port), else ``host`` or ``[host]:port``."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


class Resolver(Protocol):
    """Turns a host alias into its :class:`SshTarget`."""

    def lookup(
        self,
        alias: str,
        user: str | None = None,
        port: int | None = None,
        jump: str | None = None,
    ) -> SshTarget:
        """Resolve ``alias`` with ``-l``/``-p``/``-J``-style overrides."""
        ...

    def close(self) -> None:
        """End the run's use of the resolver."""
        ...


class SshConfigFile:
    """A parsed ssh config (with ``Include`` resolved), looked up alias by alias."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        text = ""
        if path is not None:
            try:
                text = _expand_includes(path, Path(_expand("~/.ssh")), 0)
            except OSError as exc:
                raise UsageError(f"cannot read ssh config {path}: {exc.strerror}") from None
        from platformctl.collector.paramiko_import import with_match_exec

        try:
            self._config = with_match_exec().SSHConfig.from_text(text)
        except Exception as exc:  # paramiko raises ConfigParseError and plain ValueErrors
            raise UsageError(f"cannot parse ssh config {path}: {exc}") from None

    @classmethod
    def default(cls, explicit: str | None) -> SshConfigFile:
        """``--ssh-config PATH`` when given (must exist), else ``~/.ssh/config`` if present."""
        path = explicit_config(explicit)
        if path is not None:
            return cls(path)
        default = Path("~/.ssh/config").expanduser()
        return cls(default if default.is_file() else None)

    def lookup(
        self,
        alias: str,
        user: str | None = None,
        port: int | None = None,
        jump: str | None = None,
    ) -> SshTarget:
        """Resolve ``alias``; ``user``, ``port`` and ``jump`` override the config as ssh's
        ``-l``, ``-p`` and ``-J`` do. Raises :class:`UsageError` for values that make no
        sense."""
        target = self._lookup(alias)
        changes: dict[str, object] = {}
        if user:
            changes["user"] = user
        if port:
            changes["port"] = port
        if jump:
            changes["proxy_jump"] = tuple(j for j in jump.split(",") if j)
            changes["proxy_command"] = None
        return replace(target, **changes)  # type: ignore[arg-type]

    def close(self) -> None:
        """Nothing to keep: the config is parsed again by every run."""

    def _lookup(self, alias: str) -> SshTarget:
        try:
            found = self._config.lookup(alias)
        except Exception as exc:
            raise UsageError(f"ssh config lookup for {alias!r} failed: {exc}") from None
        hostname = str(found.get("hostname") or alias)
        try:
            port = int(found.get("port", 22))
        except ValueError:
            raise UsageError(f"ssh config: Port for {alias!r} is not a number") from None
        timeout: float | None = None
        if "connecttimeout" in found:
            try:
                timeout = float(found["connecttimeout"])
            except ValueError:
                raise UsageError(
                    f"ssh config: ConnectTimeout for {alias!r} is not a number"
                ) from None
        jump = found.get("proxyjump")
        jumps: tuple[str, ...] = ()
        if jump and jump.lower() != "none":
            jumps = tuple(j.strip() for j in jump.split(",") if j.strip())
        proxy_command = found.get("proxycommand")
        if jumps or not proxy_command or proxy_command.lower() == "none":
            proxy_command = None
        agent_text = str(found.get("identityagent", "SSH_AUTH_SOCK"))
        # SSH_AUTH_SOCK (the environment's agent) passes through _expand unchanged.
        agent = None if agent_text.lower() == "none" else _expand(agent_text)
        # Batch mode: ask (and anything unknown) counts as yes.
        strict = str(found.get("stricthostkeychecking")).lower()
        strict = {"off": "no", "false": "no"}.get(strict, strict)
        if strict not in ("no", "accept-new"):
            strict = "yes"
        return SshTarget(
            alias=alias,
            hostname=hostname,
            port=port,
            user=str(found.get("user") or getpass.getuser()),
            identity_files=tuple(_expand(p) for p in found.get("identityfile", [])),
            identities_only=str(found.get("identitiesonly")).lower() == "yes",
            proxy_jump=jumps,
            connect_timeout=timeout,
            known_hosts_files=_file_list(found.get("userknownhostsfile"), DEFAULT_KNOWN_HOSTS),
            global_known_hosts_files=_file_list(
                found.get("globalknownhostsfile"), GLOBAL_KNOWN_HOSTS
            ),
            strict_host_key_checking=strict,
            proxy_command=proxy_command,
            identity_agent=agent,
            host_key_alias=found.get("hostkeyalias"),
            hash_known_hosts=str(found.get("hashknownhosts")).lower() == "yes",
        )


def explicit_config(explicit: str | None) -> Path | None:
    """The ``--ssh-config PATH`` file, which must exist; ``None`` when not given."""
    if not explicit:
        return None
    path = user_path(explicit, "--ssh-config")
    if not path.is_file():
        raise UsageError(f"ssh config {path} does not exist (check --ssh-config)")
    return path


def _expand(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(path))


def _file_list(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        return tuple(_expand(p) for p in default)
    # paramiko gives the known-hosts options as one string
    return tuple(_expand(w) for w in str(value).split() if w.lower() != "none")


def _expand_includes(path: Path, base: Path, depth: int) -> str:
    """Inline ``Include`` directives (paramiko ignores them), as OpenSSH resolves them:
    relative paths against ~/.ssh (ssh_config(5), even for -F), globs sorted."""
    if depth > MAX_INCLUDE_DEPTH:
        raise UsageError(f"ssh config Include nesting deeper than {MAX_INCLUDE_DEPTH} at {path}")
    out: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = _strip_comment(line)
        m = _INCLUDE_RE.match(line)
        if not m:
            out.append(line)
            continue
        for pattern in m.group(1).split():
            pattern = _expand(pattern.strip("\"'"))
            if not os.path.isabs(pattern):
                pattern = str(base / pattern)
            for included in sorted(glob.glob(pattern)):
                if os.path.isfile(included):
                    out.append(_expand_includes(Path(included), base, depth + 1))
    return "\n".join(out) + "\n"


def _strip_comment(line: str) -> str:
    """OpenSSH ends a line at a ``#`` outside quotes (``Port 2299 # lab``)."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line
