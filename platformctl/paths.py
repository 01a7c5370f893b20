"""Paths the user names on the command line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from platformctl.errors import UsageError, elided


def user_path(text: str, option: str) -> Path:
    """``text`` with a leading ``~`` or ``~user`` expanded, as a shell would. A ``~user`` of
    no known user is an error: ``Path.expanduser`` raises a bare RuntimeError there, and
    ``os.path.expanduser`` leaves it, which would make a folder named ``~nobody`` in the
    working folder."""
    expanded = os.path.expanduser(text)
    if expanded.startswith("~"):
        user = text.split("/", 1)[0]
        raise UsageError(
            f"{option} {elided(text)}: no home folder is known for {elided(user, 60)}; "
            "write the path out"
        )
    return Path(expanded)


def kind_of(mode: int) -> str:
    """What a file that is not a regular one is (never a symlink: those are followed, or
    refused by ``O_NOFOLLOW``)."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"
