"""The SQLite files of platformctl's caches, in the user's cache folder (docs/design.md,
"Caches").

A cache is only ever an optimisation: one that cannot be created, opened or prepared is not
used (:func:`open_cache` returns None) and the run does the work, silently. Whoever can write
a cache decides what a run believes, so a folder or file that someone else owns or may write
to is not used either.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_BUSY_MS = 1000
_DAMAGED = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def default_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/platformctl`` (``~/.cache/platformctl`` when unset or relative, as
    the XDG spec says); None without a home folder."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "platformctl"


@dataclass
class CacheFile:
    """An open cache: its connection and where it lives."""

    db: sqlite3.Connection
    path: Path

    def close(self, write: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Close, after running ``write`` in one immediate transaction when given (a read
        transaction still open is ended first). A failure (another run holding the file
        beyond the busy timeout, a full disk) costs only what was to be written."""
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if write is not None:
                with self.db:
                    self.db.execute("BEGIN IMMEDIATE")
                    write(self.db)
        except sqlite3.Error as exc:
            self.failed(exc)
        else:
            self.db.close()

    def failed(self, exc: sqlite3.Error) -> None:
        """Close after ``exc``; a damaged file is removed, so the next run starts again."""
        self.db.close()
        if _damaged(exc):
            _remove(self.path)


def keep_newest(db: sqlite3.Connection, table: str, count: int) -> None:
    """Delete all but the ``count`` rows of ``table`` written last."""
    db.execute(f"DELETE FROM {table} WHERE rowid <= (SELECT max(rowid) FROM {table}) - ?", (count,))


def open_cache(
    name: str, prepare: Callable[[sqlite3.Connection], None], folder: Path | None = None
) -> CacheFile | None:
    """The cache file ``name`` in ``folder`` (default: :func:`default_cache_dir`), created
    private if needed, in WAL mode and made ready by ``prepare``; None when it cannot be used
    (say a read-only home, or a folder someone else may write to). A damaged file is started
    again. The connection may be used from any one thread at a time."""
    folder = folder or default_cache_dir()
    if folder is None:
        return None
    path = folder / name
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (private(folder) and (not os.path.lexists(path) or private(path))):
            return None
        try:
            return CacheFile(_connect(path, prepare), path)
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            # Damaged (say by a crash while it was written): it is only a cache, start again.
            _remove(path)
            return CacheFile(_connect(path, prepare), path)
    except (OSError, ValueError, sqlite3.Error):  # ValueError: a NUL in the path
        return None


def _damaged(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in _DAMAGED


def _remove(path: Path) -> None:
    for leftover in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{leftover}")


def _connect(path: Path, prepare: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    # The file is created 0600: the umask is narrowed only for that open.
    old_umask = os.umask(0o077)
    try:
        db = sqlite3.connect(
            path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False
        )
    finally:
        os.umask(old_umask)
    try:
        # WAL: one run reading the cache does not hold up another run writing to it. The
        # switch can find the file busy (SQLite applies no busy timeout to it); the cache
        # then stays in rollback mode, which is only slower.
        with contextlib.suppress(sqlite3.OperationalError):
            db.execute("PRAGMA journal_mode=WAL")
        # No fsync at each commit: a cache may lose its last entries in a crash, never its
        # consistency (and a damaged file is started again).
        db.execute("PRAGMA synchronous=NORMAL")
        prepare(db)
    except (OSError, sqlite3.Error):
        db.close()
        raise
    return db


def private(path: Path) -> bool:
    """True when ``path`` is ours and nobody else may write to it."""
    info = os.lstat(path)
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
