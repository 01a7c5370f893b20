"""The SQLite snapshot store (sqlite-utils): schema, save, load.

Storage grows with change, not with time: a host's observed state (containers and images) is
stored once per distinct content, keyed by its hash, and each snapshot adds one small row per
host pointing at that state. Any snapshot is reconstructed exactly from those rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from platformctl.clock import from_iso, to_iso
from platformctl.collector.model import (
    Collection,
    Container,
    HostResult,
    HostState,
    HostStatus,
    content_hash,
)
from platformctl.errors import SnapshotNotFound, StoreError, elided
from platformctl.paths import kind_of
from platformctl.snapshots.model import (
    ChangePoint,
    PruneResult,
    Snapshot,
    SnapshotStatus,
    SnapshotSummary,
    snapshot_status,
)

if TYPE_CHECKING:
    from sqlite_utils import Database

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 30_000
# The tables every schema version has: a file without them is not a platformctl store.
STORE_TABLES = frozenset({"snapshots", "hosts", "host_states", "snapshot_hosts"})

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    taken_at TEXT NOT NULL,
    status TEXT NOT NULL,
    tool_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS host_states (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot_hosts (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    status TEXT NOT NULL,
    reason TEXT,
    docker_version TEXT,
    storage_driver TEXT,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    state_id INTEGER REFERENCES host_states(id),
    PRIMARY KEY (snapshot_id, host_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS snapshot_hosts_by_host ON snapshot_hosts (host_id, snapshot_id);
"""
# v2: each row says whether its host's status or state changed since the host's previous row
# (a "change point"), set when saving, so history reads only the changes instead of every
# snapshot; and time-window queries (prune --older-than) by taken_at.
_SCHEMA_V2 = """
CREATE INDEX IF NOT EXISTS snapshots_by_time ON snapshots (taken_at);
ALTER TABLE snapshot_hosts ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;
UPDATE snapshot_hosts SET changed = 1 WHERE (snapshot_id, host_id) IN (
    SELECT snapshot_id, host_id FROM (
        SELECT snapshot_id, host_id, status, state_id,
               lag(status) OVER w AS prev_status, lag(state_id) OVER w AS prev_state,
               row_number() OVER w AS n
        FROM snapshot_hosts WINDOW w AS (PARTITION BY host_id ORDER BY snapshot_id)
    ) WHERE n = 1 OR status IS NOT prev_status OR state_id IS NOT prev_state
);
CREATE INDEX IF NOT EXISTS snapshot_hosts_changes
    ON snapshot_hosts (host_id, snapshot_id) WHERE changed = 1;
"""
# v3: changes a notification could not deliver yet, per destination, sent with the next run's
# message; and per host, the snapshot of the last run that notified about it, which the next
# one compares with (docs/notify.md, "The outbox"). The destination is the SHA-256 of the
# notification URL, never the URL: URLs carry tokens and passwords. A change is opaque JSON
# to the store.
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_destination ON outbox (destination, id);
CREATE TABLE IF NOT EXISTS notified_hosts (
    host TEXT PRIMARY KEY,
    snapshot_id INTEGER NOT NULL,
    taken_at TEXT NOT NULL
);
"""
# v4: a host's row saved after the row of a run begun later (runs that overlapped, the one
# begun first saving last) is kept for its snapshot but left off the host's timeline: change
# flags, history, prune and `latest` read only rows with superseded = 0 (docs/design.md,
# "Store").
_SCHEMA_V4 = """
ALTER TABLE snapshot_hosts ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
"""
MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4}


def default_db_path() -> Path:
    """``$XDG_STATE_HOME/platformctl/snapshots.db`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "platformctl" / "snapshots.db"


class Store:
    """Snapshots in one SQLite database. Takes an open connection (or sqlite-utils
    ``Database``); use :meth:`open` for files.

    A store opened for writing is brought to the current schema and kept at mode 0600; one
    opened read-only (``writable=False``) is read as it is, whatever older schema it has, and
    never written (docs/design.md, "Store").
    """

    def __init__(
        self,
        db: Database | sqlite3.Connection,
        label: str = ":memory:",
        *,
        writable: bool = True,
        path: Path | None = None,
    ) -> None:
        if isinstance(db, sqlite3.Connection):
            self.conn = db
            self._db: Database | None = None
        else:
            self.conn = db.conn
            self._db = db
        self.label = label
        self.writable = writable
        self.path = path
        self._writing = False  # inside a write transaction: writes join it (transaction())
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not writable:
                # Belt and braces over the read-only file handle: no statement on this
                # connection may write, whatever Database it is.
                self.conn.execute("PRAGMA query_only = ON")
            # Identify before anything can write: a foreign or newer file is refused untouched.
            self.version = self._identify()
            if writable:
                if path is not None:
                    _keep_private(path)
                self._configure()
                self._migrate()
                self.version = self.schema_version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use snapshot store {label}: {_problem(exc, path)}") from None

    @classmethod
    def open(cls, path: Path, *, create: bool = True, write: bool | None = None) -> Store:
        """Open the store at ``path``.

        ``create=True`` (the default) opens it for writing, creating it (and its folder, 0700)
        when missing. ``create=False`` opens an existing store read-only, unless ``write=True``
        (an existing store opened for writing, e.g. to prune it). A missing file is then an
        error, never a new empty store.
        """
        writable = create if write is None else write
        if create and not writable:
            raise ValueError("a store that is created must be opened for writing")
        try:
            return cls._open(path, create, writable)
        except OSError as exc:  # a name too long, a folder on the way that is a file, …
            problem = exc.strerror or exc
            raise StoreError(
                f"cannot open snapshot store {elided(str(path))}: {problem} (check --db)"
            ) from None

    @classmethod
    def _open(cls, path: Path, create: bool, writable: bool) -> Store:
        if path.is_symlink() and not path.exists():
            # A dangling link most often means the real store is gone (an unmounted volume, a
            # moved file): a new empty store there would silently restart history, and creating
            # a file where a link points is how symlink attacks work (docs/design.md, "Store").
            raise StoreError(
                f"snapshot store {path} is a symbolic link to {os.readlink(path)}, which does "
                "not exist (check --db)"
            )
        if create:
            _create_file(path)
        elif not path.exists():
            raise StoreError(f"no snapshot store at {path} (check --db)")
        info = os.stat(path)  # through links, as SQLite opens it
        if stat.S_ISDIR(info.st_mode):
            raise StoreError(f"snapshot store {path} is a folder, not a file (check --db)")
        if not stat.S_ISREG(info.st_mode):
            # Before anything is opened or made private: SQLite would chmod a device (as root,
            # `--db /dev/null` took every other user's /dev/null away) and a FIFO's open
            # waits for a writer that never comes.
            raise StoreError(
                f"snapshot store {path} is not a regular file ({kind_of(info.st_mode)}); "
                "platformctl keeps its history in a file of its own (check --db)"
            )
        if not create and info.st_size == 0:
            # An empty file is a new store only to a command that creates one; `snapshots
            # prune` of a mistyped path must not turn whatever is there into a store.
            raise StoreError(
                f"snapshot store {path} holds no snapshots yet (it is empty; 'platformctl "
                "collect' or 'drift-check' creates the store)"
            )
        # A URI so the file is opened exactly as asked: "ro" never writes, "rw" never creates
        # (the file was created above, 0600, by us rather than with SQLite's default 0644).
        uri = f"{path.absolute().as_uri()}?mode={'rw' if writable else 'ro'}"
        if not writable and _on_read_only_file_system(path):
            # SQLite cannot create the -shm a WAL reader needs there; and as nothing can write
            # to a read-only file system, reading the file as immutable (no locks, no -shm) is
            # safe. Elsewhere it is not: a concurrent writer's checkpoint could be missed.
            uri += "&immutable=1"
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open snapshot store {path}: {_problem(exc, path)}") from None
        try:
            return cls(conn, label=str(path), writable=writable, path=path)
        except BaseException:
            conn.close()
            raise

    @property
    def db(self) -> Database:
        """sqlite-utils' view of the connection, for single-table writes; made (and
        sqlite-utils imported) on first use, so reading and opening a store do not pay for it
        (docs/design.md, "Start-up")."""
        if self._db is None:
            from sqlite_utils import Database

            # No plugins: code installed beside platformctl must not run on our connection
            # (and finding plugins scans every installed package's metadata).
            self._db = Database(self.conn, execute_plugins=False)
        return self._db

    def close(self) -> None:
        """Close the connection (and, for the last one, let SQLite fold its WAL back in)."""
        self.conn.close()

    def _identify(self) -> int:
        """The file's schema version, once it is known to be a platformctl store we can read.

        Refuses, before anything is written, a file of another application (tables of its own,
        or a ``user_version`` without our tables) and a store from a newer platformctl.
        """
        # Both reads in one read transaction: another run may create the store in between,
        # and a version read before its commit beside tables read after looks foreign.
        with self._reading():
            version = self.schema_version()
            objects = self.conn.execute(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            ).fetchall()
            tables = {name for kind, name in objects if kind == "table"}
            # A file with no tables but views, triggers or an application ID of its own is
            # another application's, not an empty new store.
            others = any(kind in ("view", "trigger") for kind, _ in objects)
            application = self.conn.execute("PRAGMA application_id").fetchone()[0] != 0
        # Our tables and user_version are written in one transaction, so a store has both or
        # neither; an empty file (neither) is a new store. A newer store may have more tables.
        if (
            (tables and not STORE_TABLES.issubset(tables))
            or (version == 0 and (tables or others or application))
            or (0 < version <= SCHEMA_VERSION and not tables)
            or version < 0
        ):
            raise StoreError(
                f"{self.label} is an SQLite database but not a platformctl snapshot store "
                "(check --db); it was left untouched"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"snapshot store {self.label} has schema version {version}, newer than this "
                f"platformctl supports ({SCHEMA_VERSION}); upgrade platformctl"
            )
        if version == 0 and not self.writable:
            raise StoreError(
                f"snapshot store {self.label} holds no snapshots yet (it has no platformctl "
                "tables; 'platformctl collect' or 'drift-check' creates them)"
            )
        return version

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """The reads inside as one read transaction (they see one state of the store), unless
        a transaction is open already."""
        began = not self.conn.in_transaction
        if began:
            self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if began and self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _configure(self) -> None:
        self.conn.execute("PRAGMA foreign_keys = ON")
        if self.label == ":memory:":
            return
        # Switching to WAL needs the file to itself: SQLite answers "locked" at once, without
        # its busy timeout, when a run creating the same store holds it. Wait our turn here.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # "database is locked"
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        """Bring the schema forward, one version at a time, in one transaction."""
        version = self.schema_version()
        if version == SCHEMA_VERSION:
            return
        with self._write("upgrade") as conn:
            # Re-read under the write lock: another run may have migrated meanwhile.
            version = self.schema_version()
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {max(version, SCHEMA_VERSION)}")

    @contextmanager
    def transaction(self, action: str) -> Iterator[None]:
        """Several of this store's reads and writes as one write transaction: no other run
        writes in between (a notifying run reads the marks and moves them so, docs/notify.md).
        Holds the write lock throughout: keep it short."""
        with self._write(action):
            yield

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the write lock up front (``BEGIN IMMEDIATE``), so
        concurrent runs queue on the busy timeout rather than fail half-way; rolled back on any
        error or interrupt, so the store never holds part of a write. Inside
        :meth:`transaction`, a part of that one."""
        if not self.writable:
            raise StoreError(f"cannot {action} snapshot store {self.label}: opened read-only")
        conn = self.conn
        if self._writing:
            yield conn
            return
        self._writing = True
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled the transaction back itself after some errors
                # (SQLITE_FULL among them): a ROLLBACK then fails with "no transaction is
                # active" and would hide the error the user must see, e.g. a full disk.
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot {action} snapshot store {self.label}: {_problem(exc, self.path)}"
            ) from None
        finally:
            self._writing = False

    def schema_version(self) -> int:
        """The schema version recorded in the file (0 for a new, empty store)."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def save(
        self,
        collection: Collection,
        tool_version: str,
        status: SnapshotStatus | None = None,
        *,
        begun_after: int | None = None,
    ) -> int:
        """Store one collection atomically; return the new snapshot ID.

        ``begun_after``: the newest snapshot ID (:meth:`newest_id`) when the collection
        began. Runs may overlap: a snapshot saved since then, taken in the same second as this
        one or later, is a run begun after this one that saved first. Its hosts' rows here
        are kept, for a replay of this snapshot, but superseded: off those hosts' timelines
        (docs/design.md, "Store"). None: nothing was saved meanwhile.
        """
        status = status or snapshot_status(collection.hosts)
        taken_at = to_iso(collection.taken_at)
        with self._write("write") as conn:
            later: list[int] = []
            if begun_after is not None:
                later = [
                    int(r[0])
                    for r in conn.execute(
                        # By the primary key (+: not the time index, which would read every
                        # snapshot stamped later, such as one from a clock run ahead).
                        "SELECT id FROM snapshots WHERE id > ? AND +taken_at >= ?",
                        (begun_after, taken_at),
                    )
                ]
            cursor = conn.execute(
                "INSERT INTO snapshots (taken_at, status, tool_version) VALUES (?, ?, ?)",
                (taken_at, str(status), tool_version),
            )
            snapshot_id = int(cursor.lastrowid or 0)
            for result in collection.hosts:
                self._save_host(conn, snapshot_id, result, later)
        return snapshot_id

    @staticmethod
    def _save_host(
        conn: sqlite3.Connection, snapshot_id: int, result: HostResult, later: list[int]
    ) -> None:
        """One host's row. ``later``: the snapshots of runs begun after this one, saved
        first; nearly always none."""
        # Plain SQL, not sqlite-utils' table API: this runs once per host of every run, and
        # each table-API call re-reads the schema (docs/design.md, "Store").
        host_id = _lookup(conn, "hosts", "name", result.host)
        state_id = None
        if result.state is not None:
            body = result.state.to_json()
            state_id = _lookup(conn, "host_states", "hash", content_hash(body), body=body)
        superseded = False
        if later:
            marks = ",".join("?" * len(later))
            superseded = (
                conn.execute(
                    f"SELECT 1 FROM snapshot_hosts WHERE snapshot_id IN ({marks})"
                    " AND host_id = ? LIMIT 1",
                    (*later, host_id),
                ).fetchone()
                is not None
            )
        if superseded:
            changed = False
        else:
            # A host's timeline is its rows that are not superseded, in ID order: the order
            # their runs began in.
            previous = conn.execute(
                "SELECT status, state_id FROM snapshot_hosts WHERE host_id = ?"
                " AND superseded = 0 ORDER BY snapshot_id DESC LIMIT 1",
                (host_id,),
            ).fetchone()
            changed = previous is None or tuple(previous) != (str(result.status), state_id)
        conn.execute(
            "INSERT INTO snapshot_hosts (snapshot_id, host_id, status, reason, docker_version,"
            " storage_driver, duration_ms, state_id, changed, superseded)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                snapshot_id,
                host_id,
                str(result.status),
                result.reason,
                result.docker_version,
                result.storage_driver,
                result.duration_ms,
                state_id,
                int(changed),
                int(superseded),
            ),
        )

    def newest_id(self) -> int:
        """The highest snapshot ID given so far (0 for none): what a run records as it
        begins, for :meth:`save`'s ``begun_after``."""
        return int(self._read("SELECT coalesce(max(id), 0) FROM snapshots", ())[0][0])

    def resolve_id(self, ref: str | int) -> int:
        """A snapshot ID from ``ID`` or ``latest``; :class:`SnapshotNotFound` when absent."""
        if str(ref) == "latest":
            latest = self.latest()
            if latest is None:
                raise SnapshotNotFound(f"snapshot store {self.label} holds no snapshots yet")
            return latest[0]
        text = str(ref).strip()
        if not (text.isascii() and text.isdigit()):
            raise SnapshotNotFound(
                f"snapshot ID must be a number or 'latest', got {elided(repr(ref), 60)}"
            )
        # Past SQLite's integers no snapshot can be, and the query would not take the number
        # (nor would int() take one of more than 4,300 digits).
        wanted = int(text) if len(text) <= 19 else 0
        if not 0 < wanted < 2**63 or not self._read(
            "SELECT id FROM snapshots WHERE id = ?", (wanted,)
        ):
            shown = elided(text, 60)
            raise SnapshotNotFound(
                f"no snapshot {shown} in {self.label} (see 'platformctl snapshots list')"
            )
        return wanted

    def load(self, ref: str | int) -> Snapshot:
        """Reconstruct a snapshot exactly, with every host's state."""
        # One read transaction: a prune between finding the ID and reading its rows made
        # the snapshot vanish half-read (an unpacking error, or a snapshot of no hosts).
        with self._reading():
            snapshot_id = self.resolve_id(ref)
            (row,) = self._read(
                "SELECT id, taken_at, status, tool_version FROM snapshots WHERE id = ?",
                (snapshot_id,),
            )
            rows = self._read(
                "SELECT h.name, sh.status, sh.reason, sh.docker_version, sh.storage_driver,"
                " sh.duration_ms, st.body FROM snapshot_hosts sh JOIN hosts h ON h.id = sh.host_id"
                " LEFT JOIN host_states st ON st.id = sh.state_id WHERE sh.snapshot_id = ?"
                " ORDER BY h.name",
                (snapshot_id,),
            )
        try:
            return Snapshot(
                snapshot_id,
                _moment(row[1]),
                _enum(SnapshotStatus, row[2], "snapshot status"),
                _text(row[3], "tool version"),
                tuple(_host_result(r) for r in rows),
            )
        except _Damaged as exc:
            raise self._damaged(snapshot_id, exc) from None

    def summaries(self, limit: int = 20) -> list[SnapshotSummary]:
        """The newest ``limit`` snapshots, newest first."""
        rows = self._read(
            "SELECT s.id, s.taken_at, s.status, s.tool_version, count(sh.host_id),"
            " sum(sh.status = 'ok') FROM snapshots s LEFT JOIN snapshot_hosts sh"
            " ON sh.snapshot_id = s.id GROUP BY s.id ORDER BY s.id DESC LIMIT ?",
            (limit,),
        )
        out = []
        for sid, taken_at, status, tool_version, hosts, hosts_ok in rows:
            try:
                out.append(
                    SnapshotSummary(
                        sid,
                        _moment(taken_at),
                        _enum(SnapshotStatus, status, "snapshot status"),
                        _text(tool_version, "tool version"),
                        hosts,
                        hosts_ok or 0,
                    )
                )
            except _Damaged as exc:
                raise self._damaged(sid, exc) from None
        return out

    def change_points(self, until: int | None = None) -> dict[str, list[ChangePoint]]:
        """Per host, the snapshots (up to ``until``) where its status or state changed, on
        its timeline (rows not superseded, in ID order)."""
        if self.version >= 2:
            # With each, the time of the host's snapshot before it: one step back along the
            # (host, snapshot) index.
            before_id = self._before_id()
            rows = f"""
                SELECT snapshot_id, taken_at, name, status, state_id,
                       (SELECT taken_at FROM snapshots WHERE id = before_id) AS before, before_id
                FROM (
                    SELECT sh.snapshot_id, s.taken_at, h.name, sh.status, sh.state_id,
                           ({before_id}) AS before_id
                    FROM snapshot_hosts sh JOIN snapshots s ON s.id = sh.snapshot_id
                    JOIN hosts h ON h.id = sh.host_id WHERE sh.changed = 1
                )
            """
        else:
            # A v1 store opened read-only is not migrated: find its change points the way the
            # v2 migration marks them, on the fly.
            rows = """
                SELECT snapshot_id, taken_at, name, status, state_id, before, before_id FROM (
                    SELECT sh.snapshot_id, s.taken_at, h.name, sh.status, sh.state_id,
                           lag(sh.status) OVER w AS prev_status,
                           lag(sh.state_id) OVER w AS prev_state, row_number() OVER w AS n,
                           lag(s.taken_at) OVER w AS before,
                           lag(sh.snapshot_id) OVER w AS before_id
                    FROM snapshot_hosts sh JOIN snapshots s ON s.id = sh.snapshot_id
                    JOIN hosts h ON h.id = sh.host_id
                    WINDOW w AS (PARTITION BY sh.host_id ORDER BY sh.snapshot_id)
                ) WHERE (n = 1 OR status IS NOT prev_status OR state_id IS NOT prev_state)
            """
        limit = "" if until is None else "AND snapshot_id <= ?"
        sql = f"SELECT * FROM ({rows}) WHERE 1 {limit} ORDER BY name, snapshot_id"
        out: dict[str, list[ChangePoint]] = {}
        for sid, taken_at, host, status, state_id, before, before_id in self._read(
            sql, () if until is None else (until,)
        ):
            try:
                name = _text(host, "host name")
                point = ChangePoint(
                    sid,
                    _moment(taken_at),
                    name,
                    _enum(HostStatus, status, f"status of host {name}"),
                    _state_ref(status, state_id, name),
                )
            except _Damaged as exc:
                raise self._damaged(sid, exc) from None
            if before is not None:
                try:
                    point = replace(point, before=_moment(before))
                except _Damaged as exc:  # the earlier snapshot's own time is what is damaged
                    raise self._damaged(before_id, exc) from None
            out.setdefault(name, []).append(point)
        return out

    def _before_id(self) -> str:
        """SQL for the ID of the host's snapshot before the change point ``sh`` on its
        timeline: one step back along the (host, snapshot) index."""
        return (
            "SELECT p.snapshot_id FROM snapshot_hosts p WHERE p.host_id = sh.host_id"
            f" AND p.snapshot_id < sh.snapshot_id AND {self._timeline('p')}"
            " ORDER BY p.snapshot_id DESC LIMIT 1"
        )

    def _timeline(self, alias: str) -> str:
        """The SQL condition that row ``alias`` of ``snapshot_hosts`` is on its host's
        timeline, not superseded (stores before v4, read as they are, mark none)."""
        return f"{alias}.superseded = 0" if self.version >= 4 else "1"

    def superseded(self, snapshot_id: int) -> frozenset[str]:
        """The hosts whose rows in snapshot ``snapshot_id`` are superseded: a run begun
        after this one had saved them first."""
        if self.version < 4:
            return frozenset()
        return frozenset(
            str(r[0])
            for r in self._read(
                "SELECT h.name FROM snapshot_hosts sh JOIN hosts h ON h.id = sh.host_id"
                " WHERE sh.snapshot_id = ? AND sh.superseded = 1",
                (snapshot_id,),
            )
        )

    def newest_below(
        self, hosts: Iterable[str], below: int
    ) -> dict[str, tuple[int, datetime, HostResult]]:
        """Per host, its newest row on its timeline below snapshot ``below``: the snapshot's
        ID and time, and the host's result there."""
        out: dict[str, tuple[int, datetime, HostResult]] = {}
        for host in sorted(set(hosts)):
            row = self._newest_row(host, 0, below, read=False)
            if row is not None:
                out[host] = row
        return out

    def newest_read(
        self, host: str, after: int, below: int
    ) -> tuple[int, datetime, HostResult] | None:
        """The host's newest row on its timeline between snapshots ``after`` and ``below``
        (both left out) where it was read (status ok), as :meth:`newest_below` gives it."""
        return self._newest_row(host, after, below, read=True)

    def _newest_row(
        self, host: str, after: int, below: int, read: bool
    ) -> tuple[int, datetime, HostResult] | None:
        status = f" AND sh.status = '{HostStatus.OK}'" if read else ""
        rows = self._read(
            "SELECT sh.snapshot_id, s.taken_at, h.name, sh.status, sh.reason,"
            " sh.docker_version, sh.storage_driver, sh.duration_ms, st.body"
            " FROM hosts h JOIN snapshot_hosts sh ON sh.host_id = h.id"
            " JOIN snapshots s ON s.id = sh.snapshot_id"
            " LEFT JOIN host_states st ON st.id = sh.state_id"
            " WHERE h.name = ? AND sh.snapshot_id > ? AND sh.snapshot_id < ?"
            f"{status} AND {self._timeline('sh')}"
            " ORDER BY sh.snapshot_id DESC LIMIT 1",
            (host, after, below),
        )
        if not rows:
            return None
        sid, taken_at, *result = rows[0]
        try:
            return int(sid), _moment(taken_at), _host_result(tuple(result))
        except _Damaged as exc:
            raise self._damaged(sid, exc) from None

    def states(self, ids: Iterable[int]) -> dict[int, HostState]:
        """Host states by ID."""
        wanted = sorted(set(ids))
        result: dict[int, HostState] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for sid, body in self._read(
                f"SELECT id, body FROM host_states WHERE id IN ({marks})", tuple(chunk)
            ):
                try:
                    result[sid] = _state(body)
                except _Damaged as exc:
                    raise self._damaged_state(sid, exc) from None
        gone = next((sid for sid in wanted if sid not in result), None)
        if gone is not None:  # a row points at a state no longer there
            raise self._damaged_state(gone, _Damaged("its state is missing"))
        return result

    def latest(self) -> tuple[int, datetime] | None:
        """The newest snapshot's ID and ``taken_at``, or None for an empty store: the highest
        ID but for a run whose every host a run begun later had saved first (all its rows
        superseded: it saw nothing the store did not hold newer)."""
        where = ""
        if self.version >= 4:
            where = (
                " WHERE NOT (EXISTS (SELECT 1 FROM snapshot_hosts sh WHERE sh.snapshot_id = s.id)"
                " AND NOT EXISTS (SELECT 1 FROM snapshot_hosts sh WHERE sh.snapshot_id = s.id"
                " AND sh.superseded = 0))"
            )
        newest = "SELECT id, taken_at FROM snapshots s{} ORDER BY id DESC LIMIT 1"
        rows = self._read(newest.format(where), ()) or self._read(newest.format(""), ())
        if not rows:
            return None
        try:
            return int(rows[0][0]), _moment(rows[0][1])
        except _Damaged as exc:
            raise self._damaged(rows[0][0], exc) from None

    def _damaged(self, snapshot_id: object, problem: _Damaged) -> StoreError:
        return StoreError(
            f"snapshot store {self.label}: snapshot {snapshot_id} is damaged ({problem})"
        )

    def _damaged_state(self, state_id: int, problem: _Damaged) -> StoreError:
        """The error for a damaged host state, naming the first snapshot that uses it."""
        users = self._read(
            "SELECT sh.snapshot_id, h.name FROM snapshot_hosts sh JOIN hosts h"
            " ON h.id = sh.host_id WHERE sh.state_id = ? ORDER BY sh.snapshot_id LIMIT 1",
            (state_id,),
        )
        if not users:
            return StoreError(
                f"snapshot store {self.label}: host state {state_id} is damaged ({problem})"
            )
        snapshot_id, host = users[0]
        return self._damaged(snapshot_id, _Damaged(f"host {host}: {problem}"))

    def count_since(self, since: datetime) -> int:
        """How many snapshots were taken at or after ``since``."""
        rows = self._read("SELECT count(*) FROM snapshots WHERE taken_at >= ?", (to_iso(since),))
        return int(rows[0][0])

    def prune(self, cutoff: datetime) -> PruneResult:
        """Remove snapshots taken before ``cutoff`` that no history needs.

        A snapshot older than the cutoff is kept when it is a change point of any of its hosts:
        drift intervals and ``drift_since`` are computed from change points only, so removing
        the others changes no answer. Host states no kept snapshot refers to go too.
        """
        with self._write("prune") as conn:
            # Each change point, and the host's snapshot before it: where the run it ends was
            # last seen (ChangePoint.before).
            before_id = self._before_id()
            needed = {
                sid
                for row in conn.execute(
                    f"SELECT sh.snapshot_id, ({before_id}) FROM snapshot_hosts sh"
                    " WHERE sh.changed = 1"
                    # and each host's newest: the `before` of its next change point, which
                    # may come after runs that left the host out
                    " UNION SELECT max(snapshot_id), NULL FROM snapshot_hosts sh"
                    f" WHERE {self._timeline('sh')} GROUP BY host_id"
                )
                for sid in row
                if sid is not None
            }
            older = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM snapshots WHERE taken_at < ?", (to_iso(cutoff),)
                )
            ]
            doomed = [sid for sid in older if sid not in needed]
            latest = self.latest()
            if latest is not None and latest[0] in doomed:
                doomed.remove(latest[0])
            for start in range(0, len(doomed), 500):
                chunk = doomed[start : start + 500]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM snapshot_hosts WHERE snapshot_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM snapshots WHERE id IN ({marks})", chunk)
            cur = conn.execute(
                "DELETE FROM host_states WHERE id NOT IN"
                " (SELECT state_id FROM snapshot_hosts WHERE state_id IS NOT NULL)"
            )
            removed_states = cur.rowcount
        return PruneResult(cutoff, len(doomed), len(older) - len(doomed), removed_states)

    def enqueue(
        self,
        destinations: Iterable[str],
        bodies: Iterable[str],
        created_at: datetime,
        marks: Mapping[str, tuple[int, datetime]],
    ) -> None:
        """Keep each of ``bodies`` for each of ``destinations`` until :meth:`delivered`, and
        record for each host of ``marks`` the snapshot (ID, taken_at) that was told about it;
        in one transaction, so an interrupted run does both or neither."""
        texts = list(bodies)
        rows = [
            {"destination": d, "created_at": to_iso(created_at), "body": b}
            for d in sorted(set(destinations))
            for b in texts
        ]
        with self._write("write") as conn:
            if rows:
                self.db.table("outbox").insert_all(rows)
            # A mark only moves forward: a run that notified after this one read the marks
            # keeps its own (docs/notify.md, "The outbox").
            conn.executemany(
                "INSERT INTO notified_hosts (host, snapshot_id, taken_at) VALUES (?, ?, ?)"
                " ON CONFLICT (host) DO UPDATE SET snapshot_id = excluded.snapshot_id,"
                " taken_at = excluded.taken_at"
                " WHERE excluded.snapshot_id > notified_hosts.snapshot_id"
                " OR typeof(notified_hosts.snapshot_id) != 'integer'"
                " OR typeof(notified_hosts.taken_at) != 'text'"
                " OR notified_hosts.snapshot_id > (SELECT max(id) FROM snapshots)",
                [(h, sid, to_iso(at)) for h, (sid, at) in sorted(marks.items())],
            )

    def notified(self) -> dict[str, tuple[int, datetime]]:
        """Per host, the snapshot (ID, taken_at) the last notifying run told about it: its
        own, or one of a run begun later that saved first (docs/notify.md)."""
        marks = {}
        newest = self.newest_id()
        for host, snapshot_id, taken_at in self._read(
            "SELECT host, snapshot_id, taken_at FROM notified_hosts", ()
        ):
            try:
                # A mark past the newest snapshot is damaged too: every run would look told.
                if isinstance(snapshot_id, int) and snapshot_id <= newest and isinstance(host, str):
                    marks[host] = (snapshot_id, _moment(taken_at))
            except _Damaged:
                pass
        # A damaged mark (not what platformctl writes) counts as none: the host's changes
        # are told again, and the run's own mark replaces it (enqueue).
        return marks

    def pending(self, destination: str) -> list[tuple[int, str]]:
        """What ``destination`` has not received yet, oldest first, as (ID, body)."""
        return [
            (int(i), str(b))
            for i, b in self._read(
                "SELECT id, body FROM outbox WHERE destination = ? ORDER BY id", (destination,)
            )
        ]

    def delivered(self, ids: Iterable[int]) -> None:
        """Forget outbox entries that were delivered."""
        wanted = sorted(set(ids))
        if not wanted:
            return
        with self._write("write") as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)

    def _read(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self.conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot read snapshot store {self.label}: {_problem(exc, self.path)}"
            ) from None


FILE_MODE = 0o600
FOLDER_MODE = 0o700
# The files SQLite keeps beside a database; it creates them with the database file's own mode
# (whatever the umask), so a store kept at 0600 gets 0600 companions. Ones left over from
# before the store was tightened keep their old mode until we fix it.
_COMPANIONS = ("-wal", "-shm", "-journal")


def _lookup(
    conn: sqlite3.Connection, table: str, column: str, value: str, body: str | None = None
) -> int:
    """The ID of the row of ``table`` whose UNIQUE ``column`` is ``value``, inserted (with
    ``body``, for host states) when there is none. ``table`` and ``column`` are ours."""
    row = conn.execute(f"SELECT id FROM {table} WHERE {column} = ?", (value,)).fetchone()
    if row is not None:
        return int(row[0])
    if body is None:
        cursor = conn.execute(f"INSERT INTO {table} ({column}) VALUES (?)", (value,))
    else:
        cursor = conn.execute(f"INSERT INTO {table} ({column}, body) VALUES (?, ?)", (value, body))
    return int(cursor.lastrowid or 0)


def _problem(exc: sqlite3.Error, path: Path | None) -> str:
    """SQLite's message, with the reason when it is the file system's: SQLite reports a full
    disk as "disk I/O error" when it happens while sizing the -shm file at open, and a
    read-only one as "unable to open database file"."""
    text = str(exc)
    info = _file_system(path) if path is not None else None
    if info is None:
        return text
    if info.f_flag & os.ST_RDONLY:
        return f"{text} (it is on a read-only file system)"
    if info.f_bavail == 0 and "full" not in text:
        return f"{text} (the disk holding it is full)"
    assert path is not None  # info is None without a path
    folder = Path(os.path.realpath(path)).parent
    if "readonly" in text and not os.access(folder, os.W_OK | os.X_OK):
        # A reader of a WAL store needs its -shm beside it, which SQLite creates when missing:
        # a read-only command said "attempt to write a readonly database".
        return (
            f"{text} (SQLite keeps a -shm file beside a store in WAL mode, and this user may "
            f"not create one in {folder})"
        )
    return text


def _on_read_only_file_system(path: Path) -> bool:
    info = _file_system(path)
    return info is not None and bool(info.f_flag & os.ST_RDONLY)


def _file_system(path: Path) -> os.statvfs_result | None:
    """The file system holding ``path`` (through links, as SQLite follows them)."""
    try:
        return os.statvfs(Path(os.path.realpath(path)).parent)
    except OSError:
        return None


def _create_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (and its missing folders 0700) unless it exists."""
    try:
        _make_folders(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create snapshot store {path}: {exc.strerror}") from None
    try:
        # The umask may have taken bits off the mode asked for (0400 under umask 0277 would
        # leave us unable to write); fchmod is not subject to it.
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents with mode 0700; existing ones stay as they are.

    ``mkdir``'s mode is filtered by the umask, so each folder we create is chmod-ed after; the
    umask itself is never changed (it is per process, and other threads may be creating files).
    """
    missing: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            os.mkdir(created, FOLDER_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, not ours to chmod
        os.chmod(created, FOLDER_MODE)


def _keep_private(path: Path) -> None:
    """Set the store and its SQLite companions to mode 0600 (docs/design.md, "Store")."""
    real = Path(os.path.realpath(path))  # SQLite keeps -wal/-shm beside the link's target
    for file in (real, *(real.with_name(real.name + suffix) for suffix in _COMPANIONS)):
        try:
            info = file.lstat()
            # Only a regular file of the store is ours to change: a companion name may be a
            # link planted to have another file made 0600.
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != FILE_MODE:
                os.chmod(file, FILE_MODE)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(
                f"cannot make snapshot store file {file} private (mode 0600): {exc.strerror}"
            ) from None


class _Damaged(Exception):
    """A stored value that is not what platformctl writes; the message says which."""


E = TypeVar("E", bound=StrEnum)


def _show(value: object) -> str:
    """A stored value for an error message, cut short (it is damaged: it may be anything)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _Damaged(f"{what} is {_show(value)}, not text")
    return value


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _moment(value: object, what: str = "taken_at") -> datetime:
    try:
        return from_iso(_text(value, what))
    except ValueError:
        raise _Damaged(f"{what} {_show(value)} is not a timestamp") from None


def _enum(kind: type[E], value: object, what: str) -> E:
    if isinstance(value, str) and value in {member.value for member in kind}:
        return kind(value)
    raise _Damaged(f"unknown {what} {_show(value)}")


def _host_result(row: tuple[Any, ...]) -> HostResult:
    """One ``snapshot_hosts`` row (joined with its host name and state body), checked."""
    name_value, status, reason, version, driver, duration, body = row
    name = _text(name_value, "host name")
    try:
        if not isinstance(duration, int) or isinstance(duration, bool):
            raise _Damaged(f"duration_ms is {_show(duration)}, not a number")
        return HostResult(
            host=name,
            status=_enum(HostStatus, status, "status"),
            reason=_optional_text(reason, "reason"),
            docker_version=_optional_text(version, "docker_version"),
            storage_driver=_optional_text(driver, "storage_driver"),
            duration_ms=duration,
            state=_state_of(status, body),
        )
    except _Damaged as exc:
        raise _Damaged(f"host {name}: {exc}") from None


def _state_ref(status: object, state_id: object, host: str) -> int | None:
    if state_id is None:
        if status == HostStatus.OK.value:
            raise _Damaged(f"host {host}: it was read, but its state is missing")
        return None
    if isinstance(state_id, int) and not isinstance(state_id, bool):
        return state_id
    raise _Damaged(f"host {host}: its state is {_show(state_id)}, not a number")


def _state_of(status: object, body: object) -> HostState | None:
    """The state of a host row: a host read (ok) has one, or its row lost it."""
    if body is not None:
        return _state(body)
    if status == HostStatus.OK.value:
        raise _Damaged("it was read, but its state is missing")
    return None


@cache
def _container_fields() -> dict[str, Any]:
    """Each ``Container`` field and the type its stored value must have."""
    return get_type_hints(Container)


_IMAGE_FIELDS = {"id": str, "repo_tags": list, "repo_digests": list}


def _state(body: object) -> HostState:
    """A host state's stored JSON, checked to have exactly the form ``HostState.to_json``
    writes: damaged rows must fail here with a message, not later inside the differ."""
    text = _text(body, "state")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _Damaged(f"state is not valid JSON: {exc}") from None
    if not (
        isinstance(doc, dict)
        and set(doc) == {"containers", "images"}
        and isinstance(doc["containers"], list)
        and isinstance(doc["images"], list)
    ):
        raise _Damaged("state is not the JSON platformctl writes")
    fields = _container_fields()
    for item in doc["containers"]:
        if not isinstance(item, dict) or set(item) != set(fields):
            raise _Damaged("a container in the state does not have the fields platformctl writes")
        for key, kind in fields.items():
            if not isinstance(item[key], kind):
                raise _Damaged(f"container field {key} is {_show(item[key])}")
    for item in doc["images"]:
        if not (
            isinstance(item, dict)
            and set(item) == set(_IMAGE_FIELDS)
            and all(isinstance(item[k], kind) for k, kind in _IMAGE_FIELDS.items())
            and all(isinstance(v, str) for v in (*item["repo_tags"], *item["repo_digests"]))
        ):
            raise _Damaged("an image in the state does not have the fields platformctl writes")
    try:
        return HostState.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:  # e.g. entries that cannot be ordered
        raise _Damaged(f"state cannot be read: {exc}") from None
