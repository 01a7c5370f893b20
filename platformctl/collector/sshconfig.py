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
from dataclasses import dataclass
from pathlib import Path

from paramiko.config import SSHConfig

from platformctl.errors import UsageError

MAX_INCLUDE_DEPTH = 16
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
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

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts files use for this host: ``host`` or ``[host]:port``."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


class SshConfigFile:
    """A parsed ssh config (with ``Include`` resolved), looked up alias by alias."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        text = ""
        if path is not None:
            try:
                text = _expand_includes(path, path.parent, 0)
            except OSError as exc:
                raise UsageError(f"cannot read ssh config {path}: {exc.strerror}") from None
        try:
            self._config = SSHConfig.from_text(text)
        except Exception as exc:  # paramiko raises ConfigParseError and plain ValueErrors
            raise UsageError(f"cannot parse ssh config {path}: {exc}") from None

    @classmethod
    def default(cls, explicit: str | None) -> SshConfigFile:
        """``--ssh-config PATH`` when given (must exist), else ``~/.ssh/config`` if present."""
        if explicit:
            path = Path(explicit).expanduser()
            if not path.is_file():
                raise UsageError(f"ssh config {path} does not exist (check --ssh-config)")
            return cls(path)
        default = Path("~/.ssh/config").expanduser()
        return cls(default if default.is_file() else None)

    def lookup(self, alias: str) -> SshTarget:
        """Resolve ``alias``; raises :class:`UsageError` for values that make no sense."""
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
        strict = str(found.get("stricthostkeychecking", "yes")).lower()
        strict = {"off": "no", "false": "no", "ask": "yes", "true": "yes"}.get(strict, strict)
        if strict not in ("yes", "no", "accept-new"):
            strict = "yes"
        return SshTarget(
            alias=alias,
            hostname=hostname,
            port=port,
            user=str(found.get("user") or getpass.getuser()),
            identity_files=tuple(_expand(p) for p in found.get("identityfile", [])),
            identities_only=str(found.get("identitiesonly", "no")).lower() == "yes",
            proxy_jump=jumps,
            connect_timeout=timeout,
            known_hosts_files=_file_list(found.get("userknownhostsfile"), DEFAULT_KNOWN_HOSTS),
            global_known_hosts_files=_file_list(
                found.get("globalknownhostsfile"), GLOBAL_KNOWN_HOSTS
            ),
            strict_host_key_checking=strict,
        )


def _expand(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(path))


def _file_list(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        return tuple(_expand(p) for p in default)
    words = value if isinstance(value, list) else str(value).split()
    return tuple(_expand(w) for w in words if w.lower() != "none")


def _expand_includes(path: Path, base: Path, depth: int) -> str:
    """Inline ``Include`` directives (paramiko ignores them), as OpenSSH resolves them:
    relative paths against the folder of the user's config, globs sorted."""
    if depth > MAX_INCLUDE_DEPTH:
        raise UsageError(f"ssh config Include nesting deeper than {MAX_INCLUDE_DEPTH} at {path}")
    out: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
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
