"""The snapshot store: exact reconstruction, growth with change, history, prune, migrations."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from platformctl.clock import to_iso
from platformctl.collector.model import (
    Collection,
    Container,
    HostResult,
    HostState,
    HostStatus,
    Image,
    content_hash,
)
from platformctl.errors import SnapshotNotFound, StoreError
from platformctl.snapshots.store import _SCHEMA_V1, SCHEMA_VERSION, Store
from tests.conftest import Runner
from tests.test_local_bounds import EMPTY_DOCKER, local_module


def state(version: str = "1.0", containers: int = 20, host: str = "h") -> HostState:
    image_id = "sha256:" + hashlike(version)
    cs = tuple(
        Container(
            id=hashlike(f"{host}{i}"),
            name=f"apps-svc{i}-1",
            created="2026-11-01T00:00:00Z",
            started="2026-11-01T00:00:01Z",
            status="running",
            running=True,
            config_image=f"ghcr.io/acme/svc{i}:{version}",
            image_id=image_id,
            project="apps",
            service=f"svc{i}",
            oneoff=False,
            number="1",
        )
        for i in range(containers)
    )
    images = (
        Image(
            image_id,
            (f"ghcr.io/acme/svc:{version}",),
            (f"ghcr.io/acme/svc@sha256:{hashlike('d' + version)}",),
        ),
    )
    return HostState(cs, images)


def hashlike(seed: str) -> str:
    import hashlib

    return hashlib.sha256(seed.encode()).hexdigest()


def collection(
    taken_at: datetime, hosts: int = 10, version: str = "1.0", down: frozenset[str] = frozenset()
) -> Collection:
    results = []
    for i in range(hosts):
        name = f"host{i:02d}"
        if name in down:
            results.append(HostResult(name, HostStatus.UNREACHABLE, "connection refused"))
        else:
            results.append(
                HostResult(
                    name, HostStatus.OK, None, "24.0.7", "overlay2", 120, state(version, host=name)
                )
            )
    return Collection(taken_at, tuple(results))


def at(hours: int) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=hours)


def file_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


def test_any_snapshot_reconstructs_exactly() -> None:
    store = Store(Database(memory=True))
    first = collection(at(0), hosts=3, down=frozenset({"host01"}))
    second = collection(at(1), hosts=3, version="2.0")
    a, b = store.save(first, "0.1.0"), store.save(second, "0.1.0")
    assert store.load(a).hosts == first.hosts
    assert store.load(b).hosts == second.hosts
    assert store.load("latest").id == b
    assert store.load(a).status == "partial" and store.load(b).status == "complete"


def test_unknown_snapshot_ids() -> None:
    store = Store(Database(memory=True))
    with pytest.raises(SnapshotNotFound, match="holds no snapshots"):
        store.load("latest")
    store.save(collection(at(0), hosts=1), "0.1.0")
    for ref in ("2", "-1", "x"):
        with pytest.raises(SnapshotNotFound):
            store.load(ref)
    # A number of 5,000 digits was echoed whole, and was "not a number" to int().
    with pytest.raises(SnapshotNotFound) as caught:
        store.load("9" * 5000)
    assert str(caught.value).startswith("no snapshot 999") and len(str(caught.value)) < 200


def test_unchanged_runs_add_about_a_kilobyte_each(tmp_path: Path) -> None:
    path = tmp_path / "grow.db"
    store = Store.open(path)
    store.save(collection(at(0)), "0.1.0")
    before = file_size(path)
    runs = 300
    for hour in range(1, runs + 1):
        store.save(collection(at(hour)), "0.1.0")
    per_run = (file_size(path) - before) / runs
    # 10 hosts x 20 containers, unchanged: one small row per host, never the containers again.
    assert per_run <= 1024, per_run
    rows = store.db.execute("SELECT count(*) FROM host_states").fetchone()[0]
    assert rows == 10


def test_change_points_are_where_a_host_changed() -> None:
    store = Store(Database(memory=True))
    ids = [
        store.save(collection(at(h), hosts=2, version=v, down=d), "0.1.0")
        for h, v, d in [
            (0, "1.0", frozenset()),
            (1, "1.0", frozenset()),
            (2, "1.0", frozenset({"host00"})),
            (3, "2.0", frozenset()),
            (4, "2.0", frozenset()),
        ]
    ]
    points = store.change_points()
    assert [p.snapshot_id for p in points["host00"]] == [ids[0], ids[2], ids[3]]
    assert [p.snapshot_id for p in points["host01"]] == [ids[0], ids[3]]
    assert [p.snapshot_id for p in store.change_points(until=ids[2])["host01"]] == [ids[0]]


def test_a_run_that_saves_after_one_begun_later_stays_off_its_hosts_history() -> None:
    """Runs overlap: the one begun at hour 1 saves after two begun at hour 2 (a host that
    hung). Its snapshot is kept whole for a replay, but the store already holds a later sight
    of host00: the change points and when each host was last seen before one are those of
    the order the runs began in, not the order they saved in."""
    store = Store(Database(memory=True))
    first = store.save(collection(at(0), hosts=3, version="1.0"), "x")
    slow = store.newest_id()
    for name, version in (("host02", "1.0"), ("host00", "2.0")):
        store.save(Collection(at(2), (_host(name, version),)), "x", begun_after=store.newest_id())
    later = store.newest_id()
    late = collection(at(1), hosts=2, version="1.0")
    late_id = store.save(late, "x", begun_after=slow)
    assert store.load(late_id).hosts == late.hosts
    assert store.superseded(late_id) == {"host00"}
    # Still the latest: host01 was seen there and in no run after.
    assert store.load("latest").id == late_id
    newest = store.save(
        collection(at(3), hosts=2, version="1.0"), "x", begun_after=store.newest_id()
    )
    points = store.change_points()
    # host00: 1.0 until hour 2, 2.0 there, 1.0 again at hour 3: its late row (1.0 at hour 1)
    # is no change, is not what hour 3 is compared with, and not where it was last seen
    # before hour 3. host01 was not read at hour 2: the late run's row is its own.
    assert [(p.snapshot_id, p.before) for p in points["host00"]] == [
        (first, None),
        (later, at(0)),
        (newest, at(2)),
    ]
    assert [p.snapshot_id for p in points["host01"]] == [first]
    assert store.load("latest").id == newest


def test_a_run_whose_every_host_was_read_by_a_run_begun_later_is_not_the_latest() -> None:
    store = Store(Database(memory=True))
    store.save(collection(at(0), hosts=2), "x")
    slow = store.newest_id()
    later = store.save(collection(at(2), hosts=2), "x", begun_after=slow)
    late = store.save(collection(at(1), hosts=2), "x", begun_after=slow)
    assert store.superseded(late) == {"host00", "host01"}
    assert store.load("latest").id == later


def test_a_run_begun_earlier_that_saves_during_a_later_one_supersedes_nothing() -> None:
    """B begins at hour 1, A at hour 2; B saves first, while A runs: A is the later sight."""
    store = Store(Database(memory=True))
    store.save(Collection(at(0), (_host("host00", "1.0"),)), "x")
    b_began = a_began = store.newest_id()
    store.save(Collection(at(1), (_host("host00", "1.0"),)), "x", begun_after=b_began)
    a = store.save(Collection(at(2), (_host("host00", "2.0"),)), "x", begun_after=a_began)
    assert store.superseded(a) == frozenset()
    assert store.change_points()["host00"][-1].snapshot_id == a


def test_prune_keeps_a_hosts_newest_sight_not_a_late_row_after_it() -> None:
    """host00's newest sight (hour 2) is no change point, and a run begun before it saved
    after it: prune must keep hour 2, where host00's next change was last seen before."""
    store = Store(Database(memory=True))
    store.save(Collection(at(0), (_host("host00", "1.0"),)), "x")
    slow = store.newest_id()
    store.save(Collection(at(2), (_host("host00", "1.0"),)), "x", begun_after=slow)
    store.save(Collection(at(1), (_host("host00", "1.0"),)), "x", begun_after=slow)
    store.save(Collection(at(3), (_host("host01", "1.0"),)), "x")
    store.prune(at(10))
    store.save(Collection(at(4), (_host("host00", "2.0"),)), "x")
    assert [p.before for p in store.change_points()["host00"]] == [None, at(2)]


def test_prune_keeps_what_history_needs_and_reconstructs_the_rest() -> None:
    store = Store(Database(memory=True))
    ids = [
        store.save(collection(at(h), hosts=2, version="2.0" if h >= 5 else "1.0"), "0.1.0")
        for h in range(10)
    ]
    before = store.change_points()
    result = store.prune(at(8))
    # Hours 1-3 and 6-7 go; 0 and 5 are change points, and 4 is the last snapshot before 5
    # (where the run that 5 ends was last seen: ChangePoint.before).
    assert result.removed_snapshots == 5
    assert result.kept_older == 3
    assert result.removed_states == 0
    assert store.change_points() == before
    assert [p.before for p in before["host00"]] == [None, at(4)]
    remaining = [s.id for s in store.summaries(100)]
    assert remaining == [ids[9], ids[8], ids[5], ids[4], ids[0]]
    assert store.load(ids[5]).hosts == collection(at(5), hosts=2, version="2.0").hosts


def test_prune_keeps_when_a_host_left_out_of_later_runs_was_last_seen() -> None:
    """Host a is read for five hours, then only host b for seven (collect --host b). After a
    prune, a's next change must still know it was last seen at hour 4, not hour 0: that is
    what tells whether an acceptance held to the end of the state."""
    store = Store(Database(memory=True))
    for h in range(5):
        store.save(Collection(at(h), (_host("a", "1.0"),)), "x")
    for h in range(5, 12):
        store.save(Collection(at(h), (_host("b", "1.0"),)), "x")
    store.prune(at(10))
    store.save(Collection(at(12), (_host("a", "2.0"),)), "x")
    assert [p.before for p in store.change_points()["a"]] == [None, at(4)]


def test_a_damaged_time_of_the_snapshot_before_a_change_names_that_snapshot() -> None:
    store = Store(Database(memory=True))
    for h, version in enumerate(["1.0", "1.0", "2.0"]):
        store.save(Collection(at(h), (_host("a", version),)), "x")
    store.db.execute("UPDATE snapshots SET taken_at = 'yesterday' WHERE id = 2")
    with pytest.raises(StoreError, match="snapshot 2 is damaged"):
        store.change_points()


def _host(name: str, version: str) -> HostResult:
    return HostResult(name, HostStatus.OK, state=state(version, host=name))


OTHER = HostState(images=(Image("sha256:" + "0" * 64),))


def test_a_store_written_by_schema_v1_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for statement in _SCHEMA_V1.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.executemany("INSERT INTO hosts (id, name) VALUES (?, ?)", [(1, "a"), (2, "b")])
    conn.executemany(
        "INSERT INTO host_states (id, hash, body) VALUES (?, ?, ?)",
        [(i, content_hash(st.to_json()), st.to_json()) for i, st in ((1, OTHER), (2, HostState()))],
    )
    rows = [
        (1, 1, "ok", 1),
        (1, 2, "ok", 1),
        (2, 1, "ok", 1),
        (2, 2, "unreachable", None),
        (3, 1, "ok", 2),
        (3, 2, "ok", 1),
    ]
    for sid in (1, 2, 3):
        conn.execute(
            "INSERT INTO snapshots (taken_at, status, tool_version) VALUES (?, ?, ?)",
            (to_iso(at(sid)), "complete", "0.1.0"),
        )
    conn.executemany(
        "INSERT INTO snapshot_hosts (snapshot_id, host_id, status, state_id) VALUES (?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()
    store = Store.open(path)
    assert store.schema_version() == SCHEMA_VERSION == 4
    indexes = {
        r[0]
        for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    }
    assert {"snapshots_by_time", "snapshot_hosts_changes"} <= indexes
    assert store.load(1).taken_at == at(1)
    points = store.change_points()
    assert [p.snapshot_id for p in points["a"]] == [1, 3]
    assert [p.snapshot_id for p in points["b"]] == [1, 2, 3]
    # Each change point knows when its host was last seen before it.
    assert [p.before for p in points["b"]] == [None, at(1), at(2)]
    # Saves after the upgrade keep marking change points.
    store.save(Collection(at(4), (HostResult("a", HostStatus.OK, state=HostState()),)), "x")
    assert [p.snapshot_id for p in store.change_points()["a"]] == [1, 3]


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "v9.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 9")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schema version 9"):
        Store.open(path)
    assert path.read_bytes() == before


def test_a_locked_store_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    Store.open(path).save(collection(at(0), hosts=1), "0.1.0")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO hosts (name) VALUES ('held')")
    released = threading.Event()

    def release() -> None:
        time.sleep(1.0)
        holder.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    snapshot_id = Store.open(path).save(collection(at(1), hosts=1), "0.1.0")
    assert released.is_set() and snapshot_id == 2


def _seed(db: Path, hours: list[int], version_at: dict[int, str]) -> list[int]:
    store = Store.open(db)
    return [
        store.save(collection(at(h), hosts=2, version=version_at.get(h, "1.0")), "0.1.0")
        for h in hours
    ]


def test_snapshots_commands(tmp_path: Path, run_cli: Runner) -> None:
    db = tmp_path / "cmd.db"
    ids = _seed(db, [0, 1, 2], {2: "2.0"})
    listing = run_cli("snapshots", "list", "--json", "--db", str(db)).json()
    assert [s["id"] for s in listing["snapshots"]] == ids[::-1]
    assert run_cli("snapshots", "list", "--limit", "1", "--db", str(db)).out.count("\n") == 2

    shown = run_cli("snapshots", "show", str(ids[0]), "--json", "--db", str(db)).json()
    assert shown["id"] == ids[0] and len(shown["hosts"][0]["containers"]) == 20
    assert "apps-svc3-1" in run_cli("snapshots", "show", "latest", "--db", str(db)).out

    same = run_cli("snapshots", "diff", str(ids[0]), str(ids[1]), "--json", "--db", str(db))
    assert same.json()["hosts"] == []
    changed = run_cli("snapshots", "diff", str(ids[1]), "latest", "--json", "--db", str(db))
    host0 = changed.json()["hosts"][0]
    assert host0["added"] == [] and host0["removed"] == []
    first = host0["changed"][0]
    assert first["container"] == "apps-svc0-1"
    assert first["changes"]["image"] == ["ghcr.io/acme/svc0:1.0", "ghcr.io/acme/svc0:2.0"]
    assert set(first["changes"]) == {"image", "image_id", "digests"}
    text = run_cli("snapshots", "diff", str(ids[1]), str(ids[2]), "--db", str(db)).out
    assert "~ apps-svc0-1: " in text and "svc0:1.0 → ghcr.io/acme/svc0:2.0" in text

    for args in (["show", "99"], ["diff", "1", "99"], ["show", "nope"]):
        result = run_cli("snapshots", *args, "--db", str(db))
        assert result.code == 1 and "Traceback" not in result.err


def test_snapshots_diff_sees_added_removed_and_host_status(tmp_path: Path, run_cli: Runner) -> None:
    db = tmp_path / "d.db"
    store = Store.open(db)
    a = store.save(collection(at(0), hosts=2), "0.1.0")
    full = state(host="host00")
    fewer = HostState(full.containers[:-1], full.images)
    dropped = full.containers[-1].name
    b = store.save(
        Collection(
            at(1),
            (
                HostResult("host00", HostStatus.OK, None, "24.0.7", "overlay2", 1, fewer),
                HostResult("host01", HostStatus.UNREACHABLE, "timed out"),
            ),
        ),
        "0.1.0",
    )
    doc = run_cli("snapshots", "diff", str(a), str(b), "--json", "--db", str(db)).json()
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["host00"]["removed"] == [dropped]
    assert hosts["host01"]["status"] == ["ok", "unreachable"]
    assert hosts["host01"]["removed"] == []  # not read: its containers were not seen
    reverse = run_cli("snapshots", "diff", str(b), str(a), "--json", "--db", str(db)).json()
    assert {h["host"]: h for h in reverse["hosts"]}["host00"]["added"] == [dropped]


def test_prune_command_reports_and_keeps_history(tmp_path: Path, run_cli: Runner) -> None:
    db = tmp_path / "p.db"
    store = Store.open(db)
    # Half a day off the 10-day grid, so no snapshot sits on the 90-day cutoff whatever second
    # the command reads the clock in.
    old = datetime.now(UTC) - timedelta(days=200) + timedelta(hours=12)
    stamps = [old + timedelta(days=d) for d in range(0, 200, 10)]
    for i, stamp in enumerate(stamps):
        store.save(collection(stamp, hosts=1, version="2.0" if i >= 5 else "1.0"), "0.1.0")
    result = run_cli("snapshots", "prune", "--older-than", "90d", "--json", "--db", str(db))
    doc = result.json()
    assert doc["removed_snapshots"] == 8 and doc["kept_older"] == 3
    assert run_cli("snapshots", "prune", "--older-than", "ninety", "--db", str(db)).code == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_drift_check_held_up_until_a_later_one_saved_is_kept_but_not_the_latest(
    tmp_path: Path, run_cli: Runner
) -> None:
    """Two real runs overlap: the first waits on its host until the second has saved."""
    root = local_module(tmp_path / "p")
    slow, fast = tmp_path / "slow-docker", tmp_path / "fast-docker"
    began, go = tmp_path / "began", tmp_path / "go"
    wait = f'if [ "$1" = info ]; then : > {began}; while [ ! -e {go} ]; do sleep 0.05; done; fi'
    slow.write_text(f"#!/bin/sh\n{wait}\n{EMPTY_DOCKER}")
    fast.write_text(f"#!/bin/sh\n{EMPTY_DOCKER}")
    for stand_in in (slow, fast):
        stand_in.chmod(0o755)
    db = tmp_path / "store.db"
    args = ["drift-check", "--json", "--root", str(root), "--db", str(db)]
    first = subprocess.Popen(
        [sys.executable, "-m", "platformctl", *args, "--docker-command", str(slow)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not began.exists():
            assert first.poll() is None and time.monotonic() < deadline, "the slow run ended"
            time.sleep(0.05)
        second = run_cli(*args, "--docker-command", str(fast))
        assert second.code == 2, second.err
    finally:
        go.touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 2, err
    first_id = json.loads(out)["snapshot"]["id"]
    second_id = second.json()["snapshot"]["id"]
    assert first_id > second_id  # it saved last
    latest = run_cli(
        "drift-check", "--json", "--root", str(root), "--db", str(db), "--snapshot", "latest"
    )
    assert latest.json()["snapshot"]["id"] == second_id
    store = Store.open(db, create=False)
    assert store.superseded(first_id) == {"localhost"}
    assert store.load(first_id).hosts[0].host == "localhost"
    store.close()


def test_a_transaction_around_several_writes_keeps_none_of_them_on_an_error() -> None:
    store = Store(Database(memory=True))
    sid = store.save(collection(at(0), hosts=1), "x")
    with pytest.raises(RuntimeError), store.transaction("notify"):
        store.enqueue(["dest"], ["body"], at(0), {"host00": (sid, at(0))})
        raise RuntimeError("interrupted")
    assert store.notified() == {} and store.pending("dest") == []
    store.enqueue(["dest"], ["body"], at(0), {"host00": (sid, at(0))})  # writes again
    assert store.notified() == {"host00": (sid, at(0))}


def test_a_snapshot_pruned_while_it_is_read_is_read_whole_or_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ID and the rows are read in one read transaction: a prune by another run between
    finding the ID and reading its rows gave an unpacking error (a traceback of `snapshots
    show`), or a snapshot of no hosts."""
    db = tmp_path / "s.db"
    store = Store.open(db)
    for hour in range(4):
        store.save(collection(at(hour), hosts=2, version="1.0"), "0.1.0")
    store.close()
    reader = Store.open(db, create=False)
    found = reader.resolve_id

    def pruned_right_after(ref: str | int) -> int:
        snapshot_id = found(ref)
        other = Store.open(db, create=False, write=True)
        assert other.prune(at(3)).removed_snapshots == 2  # snapshots 2 and 3
        other.close()
        return snapshot_id

    monkeypatch.setattr(reader, "resolve_id", pruned_right_after)
    snapshot = reader.load(2)
    assert snapshot.id == 2 and len(snapshot.hosts) == 2
    monkeypatch.undo()
    with pytest.raises(SnapshotNotFound):
        reader.load(2)
