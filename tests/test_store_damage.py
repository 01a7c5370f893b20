"""A store whose rows are damaged, and a disk that fills while saving: one line naming the store
(and the snapshot), exit 1, nothing half-written."""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from platformctl.collector.model import HostState
from platformctl.errors import StoreError
from platformctl.snapshots.store import Store
from tests.conftest import Runner
from tests.test_cli import assert_one_line_error
from tests.test_store import at, collection, state
from tests.test_store_files import probe_root

SNAPSHOT_TWO_STATES = "id IN (SELECT state_id FROM snapshot_hosts WHERE snapshot_id = 2)"
DAMAGES = {
    "state-not-json": (
        f"UPDATE host_states SET body = '{{\"containers\": [' WHERE {SNAPSHOT_TWO_STATES}"
    ),
    "state-of-another-shape": (
        f'UPDATE host_states SET body = \'{{"containers": 5, "images": []}}\''
        f" WHERE {SNAPSHOT_TWO_STATES}"
    ),
    "container-field-of-another-type": (
        'UPDATE host_states SET body = replace(body, \'"running":true\', \'"running":"yes"\')'
        f" WHERE {SNAPSHOT_TWO_STATES}"
    ),
    "unknown-host-status": "UPDATE snapshot_hosts SET status = 'sleepy' WHERE snapshot_id = 2",
    "host-duration-not-a-number": (
        "UPDATE snapshot_hosts SET duration_ms = 'slow' WHERE snapshot_id = 2"
    ),
    "unknown-snapshot-status": "UPDATE snapshots SET status = 'meh' WHERE id = 2",
    "bad-timestamp": "UPDATE snapshots SET taken_at = 'yesterday' WHERE id = 2",
    # A timestamp whose offset takes it out of the range of dates once in UTC: every output
    # ended in an OverflowError traceback.
    "timestamp-out-of-range": (
        "UPDATE snapshots SET taken_at = '0001-01-01T00:00:00+14:00' WHERE id = 2"
    ),
    "state-reference-not-a-number": (
        "UPDATE snapshot_hosts SET state_id = 'x' WHERE snapshot_id = 2"
    ),
    "state-gone": f"DELETE FROM host_states WHERE {SNAPSHOT_TWO_STATES}",
    "state-reference-lost": "UPDATE snapshot_hosts SET state_id = NULL WHERE snapshot_id = 2",
}
COMMANDS = {
    "list": ["snapshots", "list"],
    "show": ["snapshots", "show", "2"],
    "diff": ["snapshots", "diff", "1", "2"],
    "replay": ["drift-check", "--snapshot", "2", "--root", "{root}"],
    "history": ["drift-history", "--since", "5200w", "--root", "{root}"],
}
# Which commands read the damaged value; the others must still work.
READS = {
    "state-not-json": {"show", "diff", "replay", "history"},
    "state-of-another-shape": {"show", "diff", "replay", "history"},
    "container-field-of-another-type": {"show", "diff", "replay", "history"},
    "unknown-host-status": {"show", "diff", "replay", "history"},
    "host-duration-not-a-number": {"show", "diff", "replay"},
    "unknown-snapshot-status": {"list", "show", "diff", "replay"},
    "bad-timestamp": {"list", "show", "diff", "replay", "history"},
    "timestamp-out-of-range": {"list", "show", "diff", "replay", "history"},
    "state-reference-not-a-number": {"show", "diff", "replay", "history"},
    "state-gone": {"show", "diff", "replay", "history"},
    "state-reference-lost": {"show", "diff", "replay", "history"},
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_row_is_one_line_naming_the_store_and_the_snapshot(
    tmp_path: Path, run_cli: Runner, damage: str
) -> None:
    db = tmp_path / "damaged.db"
    store = Store.open(db)
    store.save(collection(at(0), hosts=2, version="1.0"), "0.1.0")
    store.save(collection(at(1), hosts=2, version="2.0"), "0.1.0")  # new states: its own rows
    store.close()
    conn = sqlite3.connect(db)
    assert conn.execute(DAMAGES[damage]).rowcount > 0
    conn.commit()
    conn.close()
    root = probe_root(tmp_path)
    for name, args in COMMANDS.items():
        result = run_cli(*(a.format(root=root) for a in args), "--db", str(db))
        if name in READS[damage]:
            assert result.code == 1, (name, result.out, result.err)
            assert_one_line_error(result.err, f"snapshot store {db}", "snapshot 2 is damaged")
        else:
            assert result.code in (0, 2), (name, result.err)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until the disk is full."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_a_full_disk_while_saving_says_so_stores_nothing_and_leaves_the_store_intact(
    small_disk: Path,
) -> None:
    db = small_disk / "snapshots.db"
    store = Store.open(db)
    first = store.save(collection(at(0), hosts=2), "0.1.0")
    kept = store.load(first)
    filler = fill(small_disk)
    try:
        with pytest.raises(StoreError) as failure:
            store.save(collection(at(1), hosts=10, version="2.0"), "0.1.0")
        message = str(failure.value)
        assert "database or disk is full" in message and str(db) in message, message
        # Nothing stored, as this connection and a new reader see it, and the file is sound.
        assert [s.id for s in store.summaries()] == [first]
        reader = Store.open(db, create=False)
        assert [s.id for s in reader.summaries()] == [first]
        assert reader.load(first) == kept
        reader.close()
        assert integrity(db) == "ok"
    finally:
        filler.unlink()
    # With room again the same connection saves, and the next ID follows the kept one.
    assert store.save(collection(at(2), hosts=10, version="2.0"), "0.1.0") == first + 1
    store.close()
    assert integrity(db) == "ok"


def test_a_full_disk_while_collect_saves_is_one_line_and_exit_1(
    small_disk: Path, run_cli: Runner
) -> None:
    db = small_disk / "snapshots.db"
    store = Store.open(db)
    store.save(collection(at(0), hosts=2), "0.1.0")
    store.close()
    # Another run holding the store open (a cron job, say) keeps its -shm allocated; without
    # it, opening a WAL store on a full disk already fails when SQLite sizes its -shm.
    holder = Store.open(db, create=False)
    filler = fill(small_disk)
    try:
        result = run_cli(
            "collect", "--host", "localhost", "--docker-command", "/bin/false", "--db", str(db)
        )
        assert result.code == 1, (result.out, result.err)
        assert_one_line_error(result.err, str(db), "database or disk is full")
        assert [s.id for s in holder.summaries()] == [1]
    finally:
        holder.close()
        filler.unlink()
    assert integrity(db) == "ok"


def test_a_disk_already_full_when_a_command_opens_the_store_is_named_as_such(
    small_disk: Path, run_cli: Runner
) -> None:
    db = small_disk / "snapshots.db"
    store = Store.open(db)
    store.save(collection(at(0), hosts=2), "0.1.0")
    store.close()
    before = db.read_bytes()
    filler = fill(small_disk)
    try:
        # SQLite fails sizing its -shm here and says only "disk I/O error": say why.
        for args in (
            ["collect", "--host", "localhost", "--docker-command", "/bin/false"],
            ["snapshots", "list"],
        ):
            result = run_cli(*args, "--db", str(db))
            assert result.code == 1, (result.out, result.err)
            assert_one_line_error(result.err, str(db), "the disk holding it is full")
    finally:
        filler.unlink()
    assert db.read_bytes() == before
    assert integrity(db) == "ok"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def mutated_bodies() -> st.SearchStrategy[str]:
    """A real state's JSON with one value replaced, one key dropped or one key added."""
    body = json.loads(state(containers=2).to_json())
    paths = [("containers", i, k) for i in range(2) for k in body["containers"][i]] + [
        ("images", 0, k) for k in body["images"][0]
    ]

    def mutate(path: tuple[str, int, str], how: str, value: object) -> str:
        doc = json.loads(state(containers=2).to_json())
        item = doc[path[0]][path[1]]
        if how == "replace":
            item[path[2]] = value
        elif how == "drop":
            del item[path[2]]
        else:
            item[path[2] + "_extra"] = value
        return json.dumps(doc)

    return st.builds(
        mutate, st.sampled_from(paths), st.sampled_from(["replace", "drop", "add"]), JSON
    )


@settings(max_examples=150, deadline=None)
@given(st.one_of(JSON.map(json.dumps), mutated_bodies(), st.text(max_size=40)))
def test_any_stored_state_body_reads_back_or_is_named_damaged(body: str) -> None:
    store = Store(Database(memory=True))
    store.save(collection(at(0), hosts=1), "0.1.0")
    store.db.execute("UPDATE host_states SET body = ?", (body,))
    try:
        (read,) = store.states([1]).values()
    except StoreError as exc:
        assert "snapshot 1 is damaged (host host00: " in str(exc)
    else:
        # Whatever was accepted is a well-formed state: it serializes and reads back equal.
        assert HostState.from_json(read.to_json()) == read


def test_a_store_on_a_read_only_file_system_is_read_and_a_write_says_why_not(
    small_disk: Path, run_cli: Runner
) -> None:
    db = small_disk / "snapshots.db"
    store = Store.open(db)
    store.save(collection(at(0), hosts=2), "0.1.0")
    store.close()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    listing = run_cli("snapshots", "list", "--json", "--db", str(db))
    assert listing.code == 0, listing.err
    assert [s["id"] for s in listing.json()["snapshots"]] == [1]
    shown = run_cli("snapshots", "show", "1", "--json", "--db", str(db))
    assert shown.code == 0 and len(shown.json()["hosts"]) == 2
    result = run_cli(
        "collect", "--host", "localhost", "--docker-command", "/bin/false", "--db", str(db)
    )
    assert result.code == 1
    assert_one_line_error(result.err, str(db), "read-only file system")
