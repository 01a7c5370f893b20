"""The SQLite snapshot store (sqlite-utils): schema, save, load.

Storage grows with change, not with time: a host's observed state (containers and images) is
stored once per distinct content, keyed by its hash, and each snapshot adds one small row per
host pointing at that state. Any snapshot is reconstructed exactly from those rows.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from platformctl.collector.model import Collection, HostResult, HostState, HostStatus
from platformctl.errors import SnapshotNotFound, StoreError
from platformctl.snapshots.model import Snapshot, SnapshotStatus, SnapshotSummary, snapshot_status

SCHEMA_VERSION = 1
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
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use snapshot store {label}: {exc}") from None

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating with mode 0600 if needed) the store at ``path``."""
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
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA foreign_keys = ON")
        mode = self.db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal" and self.label != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"snapshot store {self.label} has schema version {version}, newer than this "
                f"platformctl supports ({SCHEMA_VERSION}); upgrade platformctl"
            )
        if version == SCHEMA_VERSION:
            return
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another run may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < 1:
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def save(
        self, collection: Collection, tool_version: str, status: SnapshotStatus | None = None
    ) -> int:
        """Store one collection atomically; return the new snapshot ID."""
        status = status or snapshot_status(collection.hosts)
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT INTO snapshots (taken_at, status, tool_version) VALUES (?, ?, ?)",
                    (collection.taken_at, str(status), tool_version),
                )
                snapshot_id = int(cur.lastrowid or 0)
                for result in collection.hosts:
                    self._save_host(snapshot_id, result)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write snapshot store {self.label}: {exc}") from None
        return snapshot_id

    def _save_host(self, snapshot_id: int, result: HostResult) -> None:
        conn = self.db.conn
        conn.execute("INSERT OR IGNORE INTO hosts (name) VALUES (?)", (result.host,))
        host_id = conn.execute("SELECT id FROM hosts WHERE name = ?", (result.host,)).fetchone()[0]
        state_id = None
        if result.state is not None:
            body = result.state.to_json()
            digest = result.state.digest()
            conn.execute(
                "INSERT OR IGNORE INTO host_states (hash, body) VALUES (?, ?)", (digest, body)
            )
            state_id = conn.execute(
                "SELECT id FROM host_states WHERE hash = ?", (digest,)
            ).fetchone()[0]
        conn.execute(
            "INSERT INTO snapshot_hosts (snapshot_id, host_id, status, reason, docker_version,"
            " storage_driver, duration_ms, state_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                snapshot_id,
                host_id,
                str(result.status),
                result.reason,
                result.docker_version,
                result.storage_driver,
                result.duration_ms,
                state_id,
            ),
        )

    def resolve_id(self, ref: str | int) -> int:
        """A snapshot ID from ``ID`` or ``latest``; :class:`SnapshotNotFound` when absent."""
        try:
            if str(ref) == "latest":
                row = self.db.execute("SELECT max(id) FROM snapshots").fetchone()
                if row[0] is None:
                    raise SnapshotNotFound(f"snapshot store {self.label} holds no snapshots yet")
                return int(row[0])
            try:
                wanted = int(ref)
            except ValueError:
                raise SnapshotNotFound(
                    f"snapshot ID must be a number or 'latest', got {ref!r}"
                ) from None
            row = self.db.execute("SELECT id FROM snapshots WHERE id = ?", (wanted,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read snapshot store {self.label}: {exc}") from None
        if row is None:
            raise SnapshotNotFound(
                f"no snapshot {ref} in {self.label} (see 'platformctl snapshots list')"
            )
        return int(row[0])

    def load(self, ref: str | int) -> Snapshot:
        """Reconstruct a snapshot exactly, with every host's state."""
        snapshot_id = self.resolve_id(ref)
        try:
            row = self.db.execute(
                "SELECT id, taken_at, status, tool_version FROM snapshots WHERE id = ?",
                (snapshot_id,),
            ).fetchone()
            rows = self.db.execute(
                "SELECT h.name, sh.status, sh.reason, sh.docker_version, sh.storage_driver,"
                " sh.duration_ms, st.body FROM snapshot_hosts sh JOIN hosts h ON h.id = sh.host_id"
                " LEFT JOIN host_states st ON st.id = sh.state_id WHERE sh.snapshot_id = ?"
                " ORDER BY h.name",
                (snapshot_id,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read snapshot store {self.label}: {exc}") from None
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
        return Snapshot(row[0], row[1], SnapshotStatus(row[2]), row[3], hosts)

    def list(self, limit: int = 20) -> list[SnapshotSummary]:
        """The newest ``limit`` snapshots, newest first."""
        try:
            rows = self.db.execute(
                "SELECT s.id, s.taken_at, s.status, s.tool_version, count(sh.host_id),"
                " sum(sh.status = 'ok') FROM snapshots s LEFT JOIN snapshot_hosts sh"
                " ON sh.snapshot_id = s.id GROUP BY s.id ORDER BY s.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read snapshot store {self.label}: {exc}") from None
        return [
            SnapshotSummary(r[0], r[1], SnapshotStatus(r[2]), r[3], r[4], r[5] or 0) for r in rows
        ]
