"""Paths the user names on the command line."""

from __future__ import annotations

import contextlib
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


def replace_file(path: Path, data: bytes) -> None:
    """Replace the regular file ``path`` (or create it) with ``data``: a temporary file
    beside it, then a rename, so a reader sees the old file or the new one.

    A link is followed and its target replaced (the link stays). What is not a regular file
    (a device, a FIFO, a folder; a link to one, or to nothing) is refused with ``OSError``
    and left as it is: run as root, a rename over `/dev/null` replaced the device for every
    user. The old file's mode and group are kept (a metrics collector or a web server running
    as another user keeps its read access); a new file gets 0666 less the umask, as any other
    file would.
    """
    import secrets  # here: every command imports this module, few write a file

    target = Path(os.path.realpath(path))
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
        if os.path.islink(path):
            raise OSError(f"a symbolic link to {os.readlink(path)}, which does not exist") from None
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise OSError(f"not a regular file ({kind_of(old.st_mode)}); left as it is")
    # A short name of our own: the path's name and a suffix could pass the name limit, and
    # node_exporter's textfile collector reads only *.prom files, so it never reads this one
    # half-written.
    while True:
        tmp = target.parent / f".platformctl-{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        try:
            if old is not None:
                os.fchmod(fd, stat.S_IMODE(old.st_mode))
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, -1, old.st_gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
