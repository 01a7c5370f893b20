"""OpenSSH's ``%`` tokens, ``~`` and ``${VAR}`` in the options ``ssh -G`` prints unexpanded.

``ssh -G`` expands ``UserKnownHostsFile`` and ``IdentityAgent`` itself but prints
``IdentityFile`` and ``ProxyCommand`` as written, because ssh expands those only when it
connects. This module does that expansion the way ssh_config(5) describes it ("TOKENS").
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import re
import socket
from dataclasses import dataclass

_TOKEN = re.compile(r"%(.|\Z)", re.S)  # a trailing lone "%" is an error, as in ssh
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TokenError(ValueError):
    """A ``%`` token the option does not accept, or an undefined ``${VAR}``."""


@dataclass(frozen=True)
class TokenValues:
    """The values behind the tokens of one connection."""

    hostname: str
    port: int
    user: str
    original: str
    """``%n``: the alias as given (validated before it gets here)."""
    host_key_alias: str | None = None
    proxy_jump: str = ""


def local_user() -> str:
    """The local user name as OpenSSH takes it: from the password database, not ``$USER``."""
    return _account(os.getuid())[0]


def home_dir() -> str:
    """The home folder as OpenSSH takes it for ``~`` and ``%d``: the password database's."""
    return _account(os.getuid())[1]


@functools.lru_cache(maxsize=4)
def _account(uid: int) -> tuple[str, str]:
    """Name and home of ``uid``, asked of the password database once per process: every host's
    default identity files start with ``~`` (seven of them), and with NSS behind it (LDAP,
    sssd) each lookup can be a round trip."""
    entry = pwd.getpwuid(uid)
    return entry.pw_name, entry.pw_dir


def _all_tokens(values: TokenValues) -> dict[str, str]:
    fqdn = socket.gethostname()
    port = str(values.port)
    connection = f"{fqdn}{values.hostname}{port}{values.user}{values.proxy_jump}"
    return {
        "%": "%",
        "C": hashlib.sha1(connection.encode()).hexdigest(),
        "d": home_dir(),
        "h": values.hostname,
        "i": str(os.getuid()),
        "j": values.proxy_jump,
        "k": values.host_key_alias or values.original,
        "L": fqdn.split(".", 1)[0],
        "l": fqdn,
        "n": values.original,
        "p": port,
        "r": values.user,
        "u": local_user(),
    }


PROXY_COMMAND_TOKENS = frozenset("%hnpr")
"""Tokens ssh_config(5) allows in ``ProxyCommand``."""


def expand_tokens(text: str, values: TokenValues, allowed: frozenset[str] | None = None) -> str:
    """Replace ``%x`` tokens in ``text``; raises :class:`TokenError` for one not allowed."""
    if "%" not in text:
        # Nothing to expand: the tokens' table (the host name, a SHA-1 of the connection) is
        # not built for every host of a fleet whose paths name no token.
        return text
    table = _all_tokens(values)

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in table or (allowed is not None and key not in allowed):
            raise TokenError(f"unknown token %{key} in {text!r}")
        return table[key]

    return _TOKEN.sub(one, text)


def expand_path(text: str, values: TokenValues) -> str:
    """``~``, ``${VAR}`` and ``%`` tokens in a file option such as ``IdentityFile``."""
    if text == "~" or text.startswith("~/"):
        text = home_dir() + text[1:]
    elif text.startswith("~"):
        name, _, rest = text[1:].partition("/")
        try:
            text = pwd.getpwnam(name).pw_dir + ("/" + rest if rest else "")
        except KeyError:
            raise TokenError(f"no such user {name!r} in {text!r}") from None

    def env(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise TokenError(f"environment variable {name} is not defined")
        return os.environ[name]

    return expand_tokens(_ENV.sub(env, text), values)
