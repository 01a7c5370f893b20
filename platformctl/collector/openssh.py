"""Resolve host aliases with OpenSSH itself: ``ssh -G`` prints the options ssh would use.

``ssh -G`` applies ``Include``, ``Match`` (``exec`` included), canonicalization, tokens in the
options it expands, the system-wide config and every precedence rule exactly as the user's
``ssh`` does, so platformctl reaches what ``ssh`` reaches (docs/ssh.md). We only read its
``key value`` lines and connect with paramiko. Aliases are checked to be alias-shaped first:
``Match exec`` hands ``%h``/``%n`` to a shell.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from platformctl.alias import ALIAS_RE
from platformctl.collector.sshconfig import SshTarget
from platformctl.collector.sshtokens import TokenError, TokenValues, expand_path
from platformctl.errors import UsageError

if TYPE_CHECKING:
    from platformctl.collector.sshgcache import SshGCache

# Lines of ssh's stderr that are not the error: the tty notice, and what -v adds.
_NOISE = ("Pseudo-terminal will not be allocated", "debug1: ", "OpenSSH_")
# ssh -G prints path lists joined by single spaces, unquoted; a new path starts with "/" or
# "~" after ssh has expanded it. A path containing " /" is split wrongly (README).
_PATH_SPLIT = re.compile(r" (?=[/~])")


def check_alias(host: str, what: str = "host") -> None:
    """Raise :class:`UsageError` unless ``host`` looks like an ssh alias or host name: the
    user's ``Match exec`` may hand it to a shell."""
    if not ALIAS_RE.match(host):
        raise UsageError(
            f"{what} {host!r} is not an ssh alias or host name "
            "(letters, digits, '.', '-', '_', ':' only)"
        )


class SshConfigError(UsageError):
    """``ssh -G`` refused the config for an alias; the message names file, line and option."""


def find_ssh() -> str | None:
    """The ``ssh`` client on ``PATH``, or ``None``."""
    return shutil.which("ssh")


class OpenSshResolver:
    """Looks aliases up with ``ssh -G [-F CONFIG]``: one short subprocess per lookup, unless
    ``cache`` holds ssh's answer for the config's current state (docs/design.md, "ssh -G
    answers"). :meth:`close` writes the new answers to the cache."""

    def __init__(
        self,
        ssh: str,
        config: Path | None,
        timeout: float = 10.0,
        cache: SshGCache | None = None,
    ) -> None:
        self.ssh = ssh
        self.config = config
        self.timeout = timeout
        self.cache = cache

    def lookup(
        self,
        alias: str,
        user: str | None = None,
        port: int | None = None,
        jump: str | None = None,
    ) -> SshTarget:
        """Resolve ``alias``; ``user``, ``port`` and ``jump`` are passed as ``-l``, ``-p`` and
        ``-J``, as ssh itself does for a ProxyJump hop. Raises :class:`SshConfigError`."""
        if not ALIAS_RE.match(alias):
            raise SshConfigError(f"{alias!r} is not an ssh alias or host name")
        args = [self.ssh, "-G", "-T"]
        if self.config is not None:
            args += ["-F", str(self.config)]
        if user:
            args += ["-l", user]
        if port:
            args += ["-p", str(port)]
        if jump:
            args += ["-J", jump]
        args += ["--", alias]
        if self.cache is not None:
            known = self.cache.get(args)
            if known is not None:
                return parse_ssh_g(known, alias)
        # -v: ssh names each config file it reads, which the cache checks its walk against.
        command = args if self.cache is None else [args[0], "-v", *args[1:]]
        try:
            proc = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SshConfigError(
                f"ssh -G {alias} did not finish within {self.timeout:g}s (a Match exec?)"
            ) from None
        except OSError as exc:
            raise SshConfigError(f"cannot run {self.ssh}: {exc.strerror}") from None
        if proc.returncode != 0:
            raise SshConfigError(f"ssh config for {alias}: {_first_error(proc.stderr)}")
        output = proc.stdout.decode("utf-8", "replace")
        target = parse_ssh_g(output, alias)
        if self.cache is not None:
            self.cache.add(args, output, proc.stderr)
        return target

    def close(self) -> None:
        """Keep this run's new answers for the next run."""
        if self.cache is not None:
            self.cache.close()


def _first_error(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith(_NOISE):
            return line
    return "ssh -G failed"


def _options(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key:
            found.setdefault(key.lower(), []).append(value.strip())
    return found


def _one(options: Mapping[str, list[str]], key: str) -> str | None:
    values = options.get(key)
    return values[0] if values else None


def _paths(value: str | None) -> tuple[str, ...]:
    if not value or value.lower() == "none":
        return ()
    return tuple(p for p in _PATH_SPLIT.split(value) if p)


_STRICT = {"true": "yes", "yes": "yes", "ask": "yes", "false": "no", "no": "no"}


def parse_ssh_g(text: str, alias: str) -> SshTarget:
    """The :class:`SshTarget` described by ``ssh -G``'s output for ``alias``."""
    options = _options(text)
    hostname = _one(options, "hostname") or alias
    user = _one(options, "user") or ""
    try:
        port = int(_one(options, "port") or "22")
    except ValueError:
        raise SshConfigError(f"ssh -G printed a port that is not a number for {alias}") from None
    timeout_text = _one(options, "connecttimeout")
    timeout = None
    if timeout_text and timeout_text.isdigit() and int(timeout_text) > 0:
        timeout = float(timeout_text)
    jump_text = _one(options, "proxyjump")
    jumps: tuple[str, ...] = ()
    if jump_text and jump_text.lower() != "none":
        jumps = tuple(j for j in jump_text.split(",") if j)
    proxy = _one(options, "proxycommand")
    if jumps or not proxy or proxy.lower() == "none":
        proxy = None
    agent = _one(options, "identityagent") or "SSH_AUTH_SOCK"
    host_key_alias = _one(options, "hostkeyalias")
    if host_key_alias and host_key_alias.lower() == "none":
        host_key_alias = None
    values = TokenValues(hostname, port, user, alias, host_key_alias, jump_text or "")
    try:
        identities = tuple(
            expand_path(p, values) for p in options.get("identityfile", []) if p != "none"
        )
    except TokenError as exc:
        raise SshConfigError(f"ssh config for {alias}: IdentityFile: {exc}") from None
    strict = (_one(options, "stricthostkeychecking") or "ask").lower()
    return SshTarget(
        alias=alias,
        hostname=hostname,
        port=port,
        user=user,
        identity_files=identities,
        identities_only=(_one(options, "identitiesonly") or "no").lower() in ("yes", "true"),
        proxy_jump=jumps,
        connect_timeout=timeout,
        known_hosts_files=_paths(_one(options, "userknownhostsfile")),
        global_known_hosts_files=_paths(_one(options, "globalknownhostsfile")),
        strict_host_key_checking=_STRICT.get(strict, strict),
        proxy_command=proxy,
        identity_agent=None if agent.lower() == "none" else agent,
        host_key_alias=host_key_alias,
        hash_known_hosts=(_one(options, "hashknownhosts") or "no").lower() in ("yes", "true"),
    )
