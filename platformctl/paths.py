"""Paths the user names on the command line."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
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


def output_path(text: str, option: str) -> Path:
    """A file the user names to be written (``--output``, ``--metrics-file``): as
    :func:`user_path`, and refused when it ends in ``/``, which names a folder (``Path``
    drops the slash, and a file called like the folder was written)."""
    if text.endswith("/"):
        raise UsageError(f"{option} {elided(text)} names a folder; name a file")
    return user_path(text, option)


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


def replace_file(
    path: Path, data: bytes, before_replace: Callable[[], object] | None = None
) -> None:
    """Make the regular file ``path`` (created when missing) hold ``data``.

    Atomically where the result can be the same file in all but its content: a temporary
    file beside it, given its mode, owner, group and extended attributes (ACLs among them),
    then a rename, so a reader sees the old file or the new one. Where it cannot (the folder
    takes no new file, as a pre-created `/var/www/status.html` in root's folder; only root
    may give a file away, and the file is someone else's; an attribute that cannot be set; a
    second hard link), the file is written in place, keeping all of that.

    A link is followed and its target written (the link stays). Refused with ``OSError``, and
    left as it is: what is not a regular file (a device, a FIFO, a folder; a link to one, or
    to nothing: run as root, a rename over `/dev/null` replaced the device for every user),
    and a file this user may not write (its own mode says so, though the folder would let a
    rename replace it, as `sed -i` does). ``before_replace`` runs last before the file
    changes, and may raise to leave it as it is.
    """
    if _stream(path):
        # /dev/stdout and its kin: a stream of this process (a pipe, or a log appended to,
        # which a replacement would empty), not a file to replace.
        raise OSError("a stream of this process (/dev/stdout?), not a file; left as it is")
    target = Path(os.path.realpath(path))
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
        if os.path.islink(path):
            raise OSError(f"a symbolic link to {target}, which does not exist") from None
    if old is not None:
        if not stat.S_ISREG(old.st_mode):
            raise OSError(f"not a regular file ({kind_of(old.st_mode)}); left as it is")
        if not os.access(target, os.W_OK):
            if os.statvfs(target).f_flag & os.ST_RDONLY:  # the file's own mount (a bind)
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            if _mode_lets_write(old):  # what refuses is not the mode: chattr +i, an ACL
                raise OSError(
                    f"not writable (its mode {stat.S_IMODE(old.st_mode):04o} would allow it: "
                    "an immutable file, or an ACL?); left as it is"
                )
            raise OSError(
                f"not writable by this user (mode {stat.S_IMODE(old.st_mode):04o}, owner "
                f"{old.st_uid}:{old.st_gid}); left as it is"
            )
    # A second name would keep the old text after a rename: no temporary file for it. One
    # is 0600 while it is filled: it holds the new content before it has the old file's mode.
    linked = old is not None and old.st_nlink > 1
    made = None if linked else _temporary(target.parent, 0o666 if old is None else 0o600)
    if made is None:
        _in_place(target, data, before_replace, create=old is None)
        return
    fd, tmp = made
    try:
        try:
            kept = old is None or _same_but_content(fd, target, old)
            if kept:
                _write_all(fd, data)
                os.fsync(fd)
        finally:
            os.close(fd)
        if not kept:
            _remove(tmp)
            _in_place(target, data, before_replace, create=False)
            return
        if before_replace is not None:
            before_replace()
        try:
            os.replace(tmp, target)
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.EPERM):
                raise
            # A file bind-mounted into place (a container's `-v ./status.html:…`), or a
            # folder that refuses renames (chattr +a): the file itself can still be written.
            _remove(tmp)
            _in_place(target, data, before_replace, create=False)
            return
    except BaseException:
        _remove(tmp)
        raise
    # The file is replaced: from here on nothing may say it was not. Making the rename itself
    # durable is asked for; some filesystems cannot (EINVAL), or the folder cannot be opened
    # for reading (mode 0300).
    with contextlib.suppress(OSError):
        _sync_folder(target.parent)


def _stream(path: Path) -> bool:
    """Whether ``path`` or a link it leads through names a descriptor of this process."""
    name = os.path.abspath(path)
    for _ in range(40):  # as many links as the kernel follows
        if name.startswith(("/proc/", "/dev/fd/")):
            return True
        if not os.path.islink(name):
            return False
        name = os.path.join(os.path.dirname(name), os.readlink(name))
    return False


def _remove(tmp: Path) -> None:
    """Remove a temporary file, if the folder lets us (an append-only one keeps it)."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _mode_lets_write(info: os.stat_result) -> bool:
    """Whether the mode bits alone let this process write the file (root: always)."""
    uid = os.geteuid()
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IWUSR)
    if info.st_gid == os.getegid() or info.st_gid in os.getgroups():
        return bool(info.st_mode & stat.S_IWGRP)
    return bool(info.st_mode & stat.S_IWOTH)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(folder: Path, mode: int) -> tuple[int, Path] | None:
    """A new empty file in ``folder`` (``mode`` less the umask), or None when the folder takes
    none (its permissions, or a read-only file system with the file bind-mounted on it).

    A short name of our own: the target's name and a suffix could pass the name limit, and
    node_exporter's textfile collector reads only *.prom files, so it never reads this one
    half-written."""
    import secrets  # here: every command imports this module, few write a file

    while True:
        tmp = folder / f".platformctl-{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
                return None
            raise


def _same_but_content(fd: int, target: Path, old: os.stat_result) -> bool:
    """Give the new file ``fd`` the mode, owner, group and extended attributes of ``old``
    (the file at ``target``); False when one of them cannot be had."""
    os.fchmod(fd, stat.S_IMODE(old.st_mode))
    ours = os.fstat(fd)
    if (ours.st_uid, ours.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:
            return False
        os.fchmod(fd, stat.S_IMODE(old.st_mode))  # a chown clears set-user/group-ID
    try:
        names = os.listxattr(target)
        inherited = os.listxattr(fd)
    except OSError:  # a file system without them (ENOTSUP)
        return True
    try:
        # What the new file got from the folder (a default ACL) and the old one has not:
        # it would widen or narrow who may read the file, with `ls -l` showing the same.
        for name in set(inherited) - set(names):
            os.removexattr(fd, name)
        for name in names:
            os.setxattr(fd, name, os.getxattr(target, name))
    except OSError:
        return False
    return True


def _in_place(target: Path, data: bytes, before: Callable[[], object] | None, create: bool) -> None:
    """Write ``data`` over the file itself: everything but its content stays, but a crash
    in the middle of the write leaves it part old, part new. ``create``: only a file that
    was missing is made (one deleted meanwhile is not made again, empty)."""
    flags = os.O_WRONLY | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    fd = os.open(target, flags, 0o666)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped since it was looked at
            raise OSError(f"not a regular file ({kind_of(info.st_mode)}); left as it is")
        if before is not None:
            before()
            # What was checked is what the path names now: an editor that saved by rename
            # in between would have the check pass on its file and the write go to ours.
            now = os.stat(target, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
                raise OSError("replaced on disk while it was being written; left as it is")
        os.lseek(fd, 0, os.SEEK_SET)
        _write_all(fd, data)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
