"""The SQLite snapshot store (sqlite-utils): schema, save, load.

Storage grows with change, not with time: a host's observed state (containers and images) is
stored once per distinct content, keyed by its hash, and each snapshot adds one small row per
host pointing at that state. Any snapshot is reconstructed exactly from those rows.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from platformctl.clock import from_iso, to_iso
from platformctl.collector.model import (
    Collection,
    HostResult,
    HostState,
    HostStatus,
    content_hash,
)
from platformctl.errors import SnapshotNotFound, StoreError
from platformctl.snapshots.model import (
    ChangePoint,
    PruneResult,
    Snapshot,
    SnapshotStatus,
    SnapshotSummary,
    snapshot_status,
)

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 30_000

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
MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2}


def default_db_path() -> Path:
    """``$XDG_STATE_HOME/platformctl/snapshots.db`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "platformctl" / "snapshots.db"


class Store:
    """Snapshots in one SQLite database. Takes an open ``Database``; use :meth:`open` for files."""

    def __init__(self, db: Database, label: str = ":memory:") -> None:
        self.db = db
        self.label = label
        try:
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._check_version()
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use snapshot store {label}: {exc}") from None

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Store:
        """Open the store at ``path``, creating it (mode 0600) when ``create`` is true; else a
        missing file is an error."""
        if not create and not path.exists():
            raise StoreError(f"no snapshot store at {path} (check --db)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot create snapshot store {path}: {exc.strerror}") from None
        if path.is_dir():
            raise StoreError(f"snapshot store {path} is a folder, not a file (check --db)")
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open snapshot store {path}: {exc}") from None
        return cls(Database(conn), label=str(path))

    def _configure(self) -> None:
        self.db.execute("PRAGMA foreign_keys = ON")
        mode = self.db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal" and self.label != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")

    def _check_version(self) -> None:
        """Refuse a newer schema before touching the file (not even its journal mode)."""
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"snapshot store {self.label} has schema version {version}, newer than this "
                f"platformctl supports ({SCHEMA_VERSION}); upgrade platformctl"
            )

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
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the write lock up front (``BEGIN IMMEDIATE``), so
        concurrent runs queue on the busy timeout rather than fail half-way; rolled back on any
        error or interrupt, so the store never holds part of a write."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {action} snapshot store {self.label}: {exc}") from None

    def schema_version(self) -> int:
        """The schema version recorded in the file (0 for a new, empty store)."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def save(
        self, collection: Collection, tool_version: str, status: SnapshotStatus | None = None
    ) -> int:
        """Store one collection atomically; return the new snapshot ID."""
        status = status or snapshot_status(collection.hosts)
        with self._write("write"):
            snapshots = self.db.table("snapshots")
            snapshots.insert(
                {
                    "taken_at": to_iso(collection.taken_at),
                    "status": str(status),
                    "tool_version": tool_version,
                }
            )
            snapshot_id = int(snapshots.last_pk or 0)
            for result in collection.hosts:
                self._save_host(snapshot_id, result)
        return snapshot_id

    def _save_host(self, snapshot_id: int, result: HostResult) -> None:
        # lookup() finds the row by its UNIQUE column or inserts it; inside our transaction
        # sqlite-utils nests its writes in a savepoint, so the save stays all-or-nothing.
        host_id = self.db.table("hosts").lookup({"name": result.host})
        state_id = None
        if result.state is not None:
            body = result.state.to_json()
            state_id = self.db.table("host_states").lookup(
                {"hash": content_hash(body)}, {"body": body}
            )
        previous = next(
            self.db.table("snapshot_hosts").rows_where(
                "host_id = ?", [host_id], order_by="snapshot_id DESC", limit=1
            ),
            None,
        )
        changed = previous is None or (previous["status"], previous["state_id"]) != (
            str(result.status),
            state_id,
        )
        self.db.table("snapshot_hosts").insert(
            {
                "snapshot_id": snapshot_id,
                "host_id": host_id,
                "status": str(result.status),
                "reason": result.reason,
                "docker_version": result.docker_version,
                "storage_driver": result.storage_driver,
                "duration_ms": result.duration_ms,
                "state_id": state_id,
                "changed": int(changed),
            }
        )

    def resolve_id(self, ref: str | int) -> int:
        """A snapshot ID from ``ID`` or ``latest``; :class:`SnapshotNotFound` when absent."""
        if str(ref) == "latest":
            latest = self.latest()
            if latest is None:
                raise SnapshotNotFound(f"snapshot store {self.label} holds no snapshots yet")
            return latest[0]
        try:
            wanted = int(ref)
        except ValueError:
            raise SnapshotNotFound(
                f"snapshot ID must be a number or 'latest', got {ref!r}"
            ) from None
        if not self._read("SELECT id FROM snapshots WHERE id = ?", (wanted,)):
            raise SnapshotNotFound(
                f"no snapshot {ref} in {self.label} (see 'platformctl snapshots list')"
            )
        return wanted

    def load(self, ref: str | int) -> Snapshot:
        """Reconstruct a snapshot exactly, with every host's state."""
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
        hosts = tuple(
            HostResult(
                host=name,
                status=HostStatus(status),
                reason=reason,
                docker_version=version,
                storage_driver=driver,
                duration_ms=duration,
                state=HostState.from_json(body) if body is not None else None,
            )
            for name, status, reason, version, driver, duration, body in rows
        )
        return Snapshot(row[0], from_iso(row[1]), SnapshotStatus(row[2]), row[3], hosts)

    def summaries(self, limit: int = 20) -> list[SnapshotSummary]:
        """The newest ``limit`` snapshots, newest first."""
        rows = self._read(
            "SELECT s.id, s.taken_at, s.status, s.tool_version, count(sh.host_id),"
            " sum(sh.status = 'ok') FROM snapshots s LEFT JOIN snapshot_hosts sh"
            " ON sh.snapshot_id = s.id GROUP BY s.id ORDER BY s.id DESC LIMIT ?",
            (limit,),
        )
        return [
            SnapshotSummary(r[0], from_iso(r[1]), SnapshotStatus(r[2]), r[3], r[4], r[5] or 0)
            for r in rows
        ]

    def change_points(self, until: int | None = None) -> dict[str, list[ChangePoint]]:
        """Per host, the snapshots (up to ``until``) where its status or state changed."""
        limit = "" if until is None else "AND sh.snapshot_id <= ?"
        sql = f"""
            SELECT sh.snapshot_id, s.taken_at, h.name, sh.status, sh.state_id
            FROM snapshot_hosts sh JOIN snapshots s ON s.id = sh.snapshot_id
            JOIN hosts h ON h.id = sh.host_id
            WHERE sh.changed = 1 {limit}
            ORDER BY h.name, sh.snapshot_id
        """
        out: dict[str, list[ChangePoint]] = {}
        for sid, taken_at, host, status, state_id in self._read(
            sql, () if until is None else (until,)
        ):
            out.setdefault(host, []).append(
                ChangePoint(sid, from_iso(taken_at), host, HostStatus(status), state_id)
            )
        return out

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
                result[sid] = HostState.from_json(body)
        return result

    def latest(self) -> tuple[int, datetime] | None:
        """The newest snapshot's ID and ``taken_at``, or None for an empty store."""
        rows = self._read("SELECT id, taken_at FROM snapshots ORDER BY id DESC LIMIT 1", ())
        return (int(rows[0][0]), from_iso(rows[0][1])) if rows else None

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
            needed = {cp.snapshot_id for cps in self.change_points().values() for cp in cps}
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

    def _read(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self.db.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read snapshot store {self.label}: {exc}") from None
