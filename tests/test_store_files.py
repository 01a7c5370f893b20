"""The store's files: mode 0600 (with SQLite's -wal/-shm) and 0700 folders whatever the umask,
symbolic links, and read-only commands that leave a file exactly as they found it."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from platformctl.errors import StoreError
from platformctl.snapshots.store import Store, default_db_path
from tests.conftest import Runner, write_module
from tests.test_cli import assert_one_line_error
from tests.test_store import at, collection

COMPANIONS = ("-wal", "-shm")


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(db: Path) -> dict[str, int]:
    """The permission bits of the store file and of the SQLite companions that exist."""
    real = db.resolve()
    return {
        suffix or "db": stat.S_IMODE(os.stat(f"{real}{suffix}").st_mode)
        for suffix in ("", *COMPANIONS)
        if os.path.exists(f"{real}{suffix}")
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277])
def test_a_new_store_its_wal_and_shm_are_0600_and_its_folders_0700_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mask: int
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    existing = stat.S_IMODE(tmp_path.stat().st_mode)
    with umask(mask):
        store = Store.open(default_db_path())
        store.save(collection(at(0), hosts=1), "0.1.0")
    try:
        # While the store is open SQLite keeps its -wal and -shm beside it: all three private.
        assert modes(default_db_path()) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        store.close()
    for folder in (tmp_path / "state", tmp_path / "state" / "platformctl"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # A folder that was there already is not ours to change.
    assert stat.S_IMODE(tmp_path.stat().st_mode) == existing


def test_stores_opened_from_many_threads_at_once_are_all_private(tmp_path: Path) -> None:
    """No umask juggling (the umask is per process, shared by every thread): each file and
    folder gets its mode from chmod, so concurrent opens cannot leak a looser one."""
    shared = tmp_path / "shared" / "snapshots.db"
    own = [tmp_path / f"own{i}" / "deep" / "snapshots.db" for i in range(4)]
    paths = [shared] * 4 + own
    # Timeouts: a thread that fails must fail the test, never leave the others waiting.
    barrier = threading.Barrier(len(paths) + 1, timeout=120)
    done = threading.Barrier(len(paths) + 1, timeout=120)
    errors: list[BaseException] = []

    def worker(path: Path, hour: int) -> None:
        store = None
        try:
            barrier.wait()
            store = Store.open(path)
            store.save(collection(at(hour), hosts=1), "0.1.0")
        except BaseException as exc:
            errors.append(exc)
        done.wait()  # hold the store open while the files are checked
        barrier.wait()
        if store is not None:
            store.close()

    with umask(0o022):
        threads = [threading.Thread(target=worker, args=(p, i)) for i, p in enumerate(paths)]
        for t in threads:
            t.start()
        barrier.wait()
        done.wait()
        try:
            assert not errors, errors
            for path in {*paths}:
                assert modes(path) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}, path
                for folder in (path.parent, path.parent.parent):
                    if folder != tmp_path:
                        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        finally:
            barrier.wait()
            for t in threads:
                t.join()
    assert len(Store.open(shared, create=False).summaries()) == 4


def make_world_readable_with_stale_companions(db: Path) -> sqlite3.Connection:
    """A store at 0644 whose -wal and -shm (kept alive by the returned connection) are 0644."""
    store = Store.open(db)
    store.save(collection(at(0), hosts=1), "0.1.0")
    store.close()
    os.chmod(db, 0o644)
    holder = sqlite3.connect(db)
    holder.execute("SELECT count(*) FROM snapshots").fetchall()
    assert modes(db) == {"db": 0o644, "-wal": 0o644, "-shm": 0o644}
    return holder


def test_an_existing_0644_store_and_its_wal_and_shm_are_tightened_by_every_write_open(
    tmp_path: Path, run_cli: Runner
) -> None:
    db = tmp_path / "old.db"
    holder = make_world_readable_with_stale_companions(db)
    try:
        Store.open(db).close()
        assert modes(db) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}

        # The same through a writing command, and not through a reading one (which opens the
        # file read-only and changes nothing about it; the next write tightens it).
        for name in ("", *COMPANIONS):
            os.chmod(f"{db}{name}", 0o644)
        assert run_cli("snapshots", "list", "--db", str(db)).code == 0
        assert modes(db) == {"db": 0o644, "-wal": 0o644, "-shm": 0o644}
        result = run_cli("snapshots", "prune", "--older-than", "1d", "--db", str(db))
        assert result.code == 0, result.err
        assert modes(db) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        holder.close()


def test_a_dangling_symlink_is_refused_and_nothing_is_created(
    tmp_path: Path, run_cli: Runner
) -> None:
    target = tmp_path / "volume" / "snapshots.db"
    target.parent.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        Store.open(link)
    for args in (["collect", "--host", "h1"], ["snapshots", "list"]):
        result = run_cli(*args, "--db", str(link))
        assert result.code == 1
        assert_one_line_error(result.err, str(link), str(target), "does not exist")
    assert sorted(os.listdir(target.parent)) == []
    assert link.is_symlink()


def test_a_symlink_to_an_existing_store_is_followed_and_its_target_kept_private(
    tmp_path: Path, run_cli: Runner
) -> None:
    target = tmp_path / "volume" / "snapshots.db"
    target.parent.mkdir()
    Store.open(target).save(collection(at(0), hosts=1), "0.1.0")
    os.chmod(target, 0o644)
    link = tmp_path / "link.db"
    link.symlink_to(target)
    store = Store.open(link)
    store.save(collection(at(1), hosts=1), "0.1.0")
    assert modes(link) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
    store.close()
    listing = run_cli("snapshots", "list", "--json", "--db", str(link)).json()
    assert [s["id"] for s in listing["snapshots"]] == [2, 1]


def app_database(path: Path, user_version: int, wal: bool) -> None:
    """Another application's SQLite file."""
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()


def newer_store(path: Path) -> None:
    """A store written by a later platformctl (schema version 9)."""
    store = Store.open(path)
    store.save(collection(at(0), hosts=1), "9.0.0")
    store.db.execute("PRAGMA user_version = 9")
    store.close()


def probe_root(tmp_path: Path) -> Path:
    """A platform with one module on host00 (the host collection() names)."""
    root = tmp_path / "platform"
    write_module(
        root,
        "svc0",
        {
            "host": "host00",
            "orchestrator": "docker",
            "container": "apps-svc0-1",
            "image_observed": "ghcr.io/acme/svc0:1.0",
        },
    )
    return root


READERS = [
    ["snapshots", "list"],
    ["snapshots", "show", "latest"],
    ["snapshots", "diff", "1", "latest"],
    ["drift-history", "--root", "{root}"],
    ["drift-check", "--snapshot", "latest", "--root", "{root}"],
]
WRITERS = [
    ["snapshots", "prune", "--older-than", "1d"],
    ["collect", "--host", "host00"],
    ["drift-check", "--root", "{root}"],
]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("app", "not a platformctl snapshot store"),
        ("app-with-user-version", "not a platformctl snapshot store"),
        ("app-in-wal-mode", "not a platformctl snapshot store"),
        ("newer-platformctl", "newer than this platformctl supports"),
        # No tables, but a view or an application ID of its own: not an empty new store (a
        # review found `collect` adding our tables beside the view and switching it to WAL).
        ("app-with-only-a-view", "not a platformctl snapshot store"),
        ("app-with-an-application-id", "not a platformctl snapshot store"),
        # A negative schema version: every writing command ended in a KeyError.
        ("negative-version", "not a platformctl snapshot store"),
    ],
)
def test_a_file_that_is_not_our_store_is_refused_by_every_command_and_left_untouched(
    tmp_path: Path, run_cli: Runner, kind: str, message: str
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    db = folder / "other.db"
    if kind == "newer-platformctl":
        newer_store(db)
    elif kind == "negative-version":
        newer_store(db)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA user_version = -1")
        conn.close()
    elif kind in ("app-with-only-a-view", "app-with-an-application-id"):
        conn = sqlite3.connect(db)
        if kind == "app-with-only-a-view":
            conn.execute("CREATE VIEW answer AS SELECT 42 AS value")
        else:
            conn.execute("PRAGMA application_id = 1234")
        conn.commit()
        conn.close()
    else:
        app_database(db, 3 if kind == "app-with-user-version" else 0, kind == "app-in-wal-mode")
    before, files = digest(db), sorted(os.listdir(folder))
    root = probe_root(tmp_path)
    for args in READERS + WRITERS:
        result = run_cli(*(a.format(root=root) for a in args), "--db", str(db))
        assert result.code == 1, (args, result.out, result.err)
        assert_one_line_error(result.err, str(db), message)
        assert digest(db) == before, args
    if kind != "app-in-wal-mode":
        # SQLite's own reader protocol needs a WAL database's -shm; a rollback-journal file
        # is read with nothing created beside it.
        assert sorted(os.listdir(folder)) == files
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == (
        "wal" if kind in ("app-in-wal-mode", "newer-platformctl", "negative-version") else "delete"
    )
    conn.close()


def downgrade_to_v1(db: Path) -> None:
    """Turn a store into what platformctl's schema v1 wrote (no change-point column, rollback
    journal), keeping its snapshots."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("DROP INDEX snapshot_hosts_changes")
    conn.execute("DROP INDEX snapshots_by_time")
    conn.execute("ALTER TABLE snapshot_hosts DROP COLUMN changed")
    conn.execute("ALTER TABLE snapshot_hosts DROP COLUMN superseded")
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def downgrade_to_v3(db: Path) -> None:
    """Turn a store into what platformctl's schema v3 wrote: no superseded column."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("ALTER TABLE snapshot_hosts DROP COLUMN superseded")
    conn.execute("PRAGMA user_version = 3")
    conn.close()


def test_read_only_commands_read_a_v1_store_as_it_is_and_answer_as_after_the_upgrade(
    tmp_path: Path, run_cli: Runner
) -> None:
    db = tmp_path / "v1.db"
    store = Store.open(db)
    versions = ["1.0", "1.0", "2.0", "2.0", "1.0", "2.0"]
    for hour, version in enumerate(versions):
        store.save(collection(at(hour), hosts=2, version=version), "0.1.0")
    store.close()
    downgrade_to_v1(db)
    before = digest(db)
    root = probe_root(tmp_path)
    since = ["--since", "5200w", "--json"]

    def answers() -> list[object]:
        results = [
            run_cli("snapshots", "list", "--json", "--db", str(db)),
            run_cli("snapshots", "show", "3", "--json", "--db", str(db)),
            run_cli("snapshots", "diff", "2", "3", "--json", "--db", str(db)),
            run_cli("drift-history", "--root", str(root), *since, "--db", str(db)),
            run_cli(
                "drift-check", "--snapshot", "6", "--root", str(root), "--json", "--db", str(db)
            ),
        ]
        for r in results:
            assert r.code in (0, 2), r.err
        docs = [r.json() for r in results]
        # drift-history measures up to now: keep what does not depend on the clock.
        docs[3] = [(m["module"], m["status"], m["intervals"]) for m in docs[3]["modules"]]
        return docs

    as_v1 = answers()
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("v1.db")) == ["v1.db"]
    (_, status, intervals) = as_v1[3][0]
    assert status == "drift"
    assert [i["from"] for i in intervals] == [
        "2026-01-01T02:00:00Z",
        "2026-01-01T05:00:00Z",
    ]
    assert as_v1[4]["modules"][0]["drift_since"] == "2026-01-01T05:00:00Z"

    Store.open(db).close()  # a writing open migrates it
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 2
    conn.close()
    upgraded = answers()
    for old, new in zip(as_v1, upgraded, strict=True):
        assert old == new


def test_a_store_whose_mode_cannot_be_set_is_refused_not_used_loosely(tmp_path: Path) -> None:
    """Another user's world-writable store: chmod is not ours to do, so no write happens."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to act as another user")
    shared = Path(tempfile.mkdtemp(prefix="platformctl-shared-", dir="/tmp"))
    try:
        os.chmod(shared, 0o777)
        db = shared / "snapshots.db"
        store = Store.open(db)
        store.save(collection(at(0), hosts=1), "0.1.0")
        store.close()
        os.chmod(db, 0o666)
        before = digest(db)
        proc = subprocess.run(
            [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable]
            + ["-m", "platformctl", "snapshots", "prune", "--older-than", "1d", "--db", str(db)],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(shared)},
            cwd=Path(__file__).parent.parent,
        )
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert_one_line_error(proc.stderr, f"{db} private (mode 0600)", "not permitted")
        assert modes(db)["db"] == 0o666 and digest(db) == before
    finally:
        shutil.rmtree(shared)


def test_runs_that_create_one_store_at_the_same_moment_all_use_it(tmp_path: Path) -> None:
    """Two cron runs starting together on a new store: neither may take the store the other
    is creating for a foreign database."""
    for round_ in range(40):
        path = tmp_path / f"r{round_}" / "snapshots.db"
        start = threading.Barrier(6, timeout=60)
        errors: list[BaseException] = []

        def opener(
            path: Path = path,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                start.wait()
                Store.open(path).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=opener) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, (round_, errors)


def test_a_v1_store_read_as_it_is_gives_the_change_points_of_its_upgrade(tmp_path: Path) -> None:
    """Read-only commands find a v1 store's change points on the fly, each with when its host
    was last seen before it, as the upgraded store records them."""
    db = tmp_path / "v1.db"
    store = Store.open(db)
    for hour, version in enumerate(["1.0", "1.0", "2.0", "2.0", "1.0", "2.0"]):
        store.save(collection(at(hour), hosts=2, version=version), "0.1.0")
    store.close()
    downgrade_to_v1(db)
    read_only = Store.open(db, create=False)
    as_v1 = read_only.change_points()
    read_only.close()
    upgraded = Store.open(db)
    assert upgraded.schema_version() > 1
    assert as_v1 == upgraded.change_points()
    assert [p.before for p in as_v1["host00"]] == [None, at(1), at(3), at(4)]
    upgraded.close()


def test_a_v3_store_is_read_as_it_is_and_gains_the_superseded_mark_on_a_write(
    tmp_path: Path,
) -> None:
    db = tmp_path / "v3.db"
    store = Store.open(db)
    for hour, version in enumerate(["1.0", "2.0", "2.0"]):
        store.save(collection(at(hour), hosts=2, version=version), "0.1.0")
    points = store.change_points()
    store.close()
    downgrade_to_v3(db)
    before = digest(db)
    read_only = Store.open(db, create=False)
    assert read_only.change_points() == points
    assert read_only.superseded(1) == frozenset()
    assert read_only.load("latest").id == 3
    read_only.close()
    assert digest(db) == before
    upgraded = Store.open(db)
    assert upgraded.schema_version() == 4
    # A run begun before hour 2's saves now: the hosts' later sight stands.
    late = upgraded.save(collection(at(1), hosts=2, version="1.0"), "0.1.0", begun_after=1)
    assert upgraded.superseded(late) == {"host00", "host01"}
    assert upgraded.change_points() == points
    upgraded.close()


def test_a_v3_store_with_runs_saved_out_of_order_gives_the_drift_ages_it_always_gave(
    tmp_path: Path,
) -> None:
    """Before v4 a run that saved late joined the history in ID order; read as it is, such a
    store's replay keeps its old answer (10:02), not the clamp v4 stores get (10:01)."""
    from platformctl import api
    from platformctl.collector.model import Collection, HostResult, HostStatus
    from platformctl.differ import diff
    from tests.test_notify import API, BAD, GOOD, T0

    db = tmp_path / "v3.db"
    store = Store.open(db)
    for minute, state in ((0, GOOD), (2, BAD), (1, BAD)):  # the last saved late, unmarked
        taken = T0 + timedelta(minutes=minute)
        store.save(Collection(taken, (HostResult("rs2000", HostStatus.OK, state=state),)), "x")
    store.close()

    def replayed(store: Store) -> object:
        snap = store.load(3)
        report = diff(
            (API,),
            snap.hosts,
            snapshot_id=3,
            taken_at=snap.taken_at,
            snapshot_status=snap.status,
            replay=True,
            now=T0,
        )
        return api.with_drift_since(report, store, T0).modules[0].drift_since

    assert replayed(Store.open(db, create=False)) == T0 + timedelta(minutes=1)
    downgrade_to_v3(db)
    assert replayed(Store.open(db, create=False)) == T0 + timedelta(minutes=2)


def test_a_store_path_that_is_not_a_regular_file_is_refused_and_left_as_it_is(
    tmp_path: Path,
) -> None:
    """A device or a FIFO as --db: SQLite made a device 0600 beside a "-journal" file (as
    root, `--db /dev/null` took /dev/null away from every other user), and a FIFO's open
    waited for a writer for good. Refused before anything is opened, through a link too."""
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo, 0o644)
    for path in (fifo, tmp_path / "link-to-fifo.db"):
        if path != fifo:
            path.symlink_to(fifo)
        for args in (["snapshots", "list"], ["snapshots", "prune", "--older-than", "1d"]):
            # A process of its own, with a time limit: the failure this guards is a hang.
            result = subprocess.run(
                [sys.executable, "-m", "platformctl", *args, "--db", str(path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 1, result.stderr
            assert_one_line_error(result.stderr, str(path), "is not a regular file (a FIFO)")
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644
    if os.getuid() != 0:
        return  # making a device node needs root
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    null.chmod(0o666)
    with pytest.raises(StoreError) as caught:
        Store.open(null)
    assert str(caught.value) == (
        f"snapshot store {null} is not a regular file (a device); platformctl keeps its "
        "history in a file of its own (check --db)"
    )
    assert stat.S_IMODE(null.stat().st_mode) == 0o666
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fifo.db",
        "link-to-fifo.db",
        "null",
    ]


def test_prune_of_an_empty_file_leaves_it_empty(tmp_path: Path, run_cli: Runner) -> None:
    """Only a command that creates a store makes an empty file one."""
    db = tmp_path / "empty.db"
    db.touch()
    result = run_cli("snapshots", "prune", "--older-than", "1d", "--db", str(db))
    assert result.code == 1
    assert_one_line_error(result.err, str(db), "holds no snapshots yet (it is empty")
    assert db.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_link_planted_as_a_stores_companion_does_not_get_its_target_made_private(
    tmp_path: Path,
) -> None:
    """The store and its -wal, -shm and -journal are made 0600 as a store is opened for
    writing; a link in a companion's place pointed that chmod at any file (followed as root,
    a file of anyone's). SQLite's own use of such a link is SQLite's: here the chmod alone."""
    from platformctl.snapshots.store import _keep_private

    db = tmp_path / "snap.db"
    Store.open(db).close()
    db.chmod(0o644)
    target = tmp_path / "someone-elses.txt"
    target.write_text("mine")
    target.chmod(0o644)
    (tmp_path / "snap.db-journal").symlink_to(target)
    _keep_private(db)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_reader_who_may_not_write_beside_a_wal_store_is_told_why(tmp_path: Path) -> None:
    """SQLite creates a WAL store's -shm for a reader: one who may not write in its folder
    was told only "attempt to write a readonly database"."""
    if os.getuid() != 0:
        pytest.skip("reading as another user needs root")
    from tests.test_observe_edit import as_nobody

    folder = Path(tempfile.mkdtemp(prefix="platformctl-store-", dir="/tmp"))
    try:
        db = folder / "s.db"
        store = Store.open(db)
        store.save(collection(at(0), hosts=1), "0.1.0")
        store.close()
        for companion in ("s.db-wal", "s.db-shm"):
            (folder / companion).unlink(missing_ok=True)
        folder.chmod(0o755)
        db.chmod(0o644)
        said = as_nobody(lambda: Store.open(db, create=False))
        assert said == (
            f"cannot use snapshot store {db}: attempt to write a readonly database (SQLite "
            f"keeps a -shm file beside a store in WAL mode, and this user may not create one "
            f"in {folder})"
        )
    finally:
        shutil.rmtree(folder)
