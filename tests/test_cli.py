"""Usage errors, configuration errors and the store's bad states: one line, exit 1."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from platformctl import __version__
from tests.conftest import Runner, write_module


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    root = tmp_path / "platform"
    for name in ("honcho-api", "honcho-worker", "web"):
        write_module(root, name, {"host": "edge", "orchestrator": "external"})
    return root


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]


def test_version(run_cli: Runner) -> None:
    result = run_cli("--version")
    assert result.code == 0 and __version__ in result.out


def test_unknown_module_exits_1_and_suggests_close_names(platform: Path, run_cli: Runner) -> None:
    result = run_cli("drift-check", "honcho-apii", "--root", str(platform))
    assert result.code == 1
    assert_one_line_error(result.err, "unknown module 'honcho-apii'", "honcho-api")


def test_only_external_modules_is_all_skipped_and_exit_0(platform: Path, run_cli: Runner) -> None:
    result = run_cli("drift-check", "--root", str(platform))
    assert result.code == 0 and "3 skipped" in result.out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["drift-check", "--jobs", "0"], "--jobs"),
        (["drift-check", "--jobs", "many"], "--jobs"),
        (["drift-check", "--connect-timeout", "-1"], "--connect-timeout"),
        (["drift-check", "--bogus"], "--bogus"),
        (["drift-chek"], "drift-chek"),
        (["drift-check", "--docker-command", ""], "docker command is empty"),
    ],
)
def test_bad_options_exit_1_never_2(
    platform: Path, run_cli: Runner, args: list[str], fragment: str
) -> None:
    result = run_cli(*args, "--root", str(platform))
    assert result.code == 1
    assert "Traceback" not in result.err and fragment in result.err


def test_missing_root_and_empty_modules_exit_1(tmp_path: Path, run_cli: Runner) -> None:
    result = run_cli("drift-check", "--root", str(tmp_path / "nope"))
    assert result.code == 1
    assert_one_line_error(result.err, "is not a folder")
    (tmp_path / "modules").mkdir()
    result = run_cli("drift-check", "--root", str(tmp_path))
    assert result.code == 1
    assert_one_line_error(result.err, "no module manifests")


def test_root_from_environment_and_from_the_current_folder(
    platform: Path, run_cli: Runner, tmp_path: Path
) -> None:
    from_env = run_cli("drift-check", env={"PLATFORMCTL_ROOT": str(platform)}, cwd=tmp_path)
    assert from_env.code == 0 and "3 skipped" in from_env.out
    # From a folder inside the repository, without --root or the variable.
    inside = platform / "modules" / "web"
    from_cwd = run_cli("drift-check", env={"PLATFORMCTL_ROOT": None}, cwd=inside)
    assert from_cwd.code == 0 and "3 skipped" in from_cwd.out
    # Outside any repository there is nothing to find.
    outside = run_cli("drift-check", env={"PLATFORMCTL_ROOT": None}, cwd=tmp_path)
    assert outside.code == 1
    assert_one_line_error(outside.err, "no modules/ folder")


def test_invalid_manifest_outside_scope_warns_without_changing_exit(
    platform: Path, run_cli: Runner
) -> None:
    bad = platform / "modules" / "broken" / "module.yaml"
    bad.parent.mkdir()
    bad.write_text("spec: [\n")
    result = run_cli("drift-check", "web", "--root", str(platform))
    assert result.code == 0 and "warning: broken" in result.err
    assert run_cli("drift-check", "--root", str(platform)).code == 8
    assert run_cli("drift-check", "broken", "--root", str(platform)).code == 8


@pytest.mark.parametrize("content", [b"garbage" * 200, b"SQLite format 3\x00" + b"\x01" * 50])
def test_corrupt_store_exits_1_naming_the_file_and_is_not_touched(
    platform: Path, run_cli: Runner, tmp_path: Path, content: bytes
) -> None:
    db = tmp_path / "corrupt.db"
    db.write_bytes(content)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = run_cli("drift-check", "--root", str(platform), "--db", str(db))
    assert result.code == 1
    assert_one_line_error(result.err, str(db))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_store_from_a_newer_schema_is_refused(
    platform: Path, run_cli: Runner, tmp_path: Path
) -> None:
    db = tmp_path / "future.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    result = run_cli("drift-check", "--root", str(platform), "--db", str(db))
    assert result.code == 1
    assert_one_line_error(result.err, "schema version 99", "upgrade platformctl")


def test_unknown_snapshot_id_exits_1(platform: Path, run_cli: Runner, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    for ref in ("42", "latest", "abc"):
        result = run_cli("drift-check", "--snapshot", ref, "--root", str(platform), "--db", str(db))
        assert result.code == 1
        assert_one_line_error(result.err, "snapshot")


def test_numbers_past_any_store_are_one_line_or_all_there_is_never_a_traceback(
    platform: Path, run_cli: Runner, tmp_path: Path
) -> None:
    """An ID past SQLite's integers is no snapshot; a window reaching back past year 1 is all
    the history there is (dates end there), and a limit past any store is every snapshot."""
    from datetime import UTC, datetime

    from platformctl.collector.model import Collection, HostResult, HostState, HostStatus
    from platformctl.snapshots.store import Store

    db = tmp_path / "s.db"
    store = Store.open(db)
    taken = datetime(2026, 1, 1, tzinfo=UTC)
    store.save(Collection(taken, (HostResult("h", HostStatus.OK, state=HostState()),)), "x")
    store.close()
    huge = "9" * 23
    root = ("--root", str(platform))
    for wanted, args in (
        (huge, ("snapshots", "show", huge)),
        (huge, ("snapshots", "diff", "1", huge)),
        (str(2**63), ("snapshots", "show", str(2**63))),
        (huge, ("drift-check", "--snapshot", huge, *root)),
    ):
        result = run_cli(*args, "--db", str(db))
        assert result.code == 1, result.err
        assert_one_line_error(result.err, f"no snapshot {wanted}")
    for args in (
        ("drift-history", "--since", "999999d", *root),
        ("drift-history", "--since", "99999999999999d", *root),
        ("snapshots", "list", "--limit", huge),
        ("snapshots", "prune", "--older-than", "999999d"),
    ):
        result = run_cli(*args, "--db", str(db))
        assert (result.code, result.err) == (0, ""), args
    # Thousands of digits Python will not even read: a usage error like any other.
    result = run_cli("snapshots", "prune", "--older-than", "9" * 5000 + "d", "--db", str(db))
    assert result.code == 1
    assert_one_line_error(result.err, "expected a duration")


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["--help"], ["drift-check", "--help"], ["snapshots", "list", "--help"]],
)
def test_version_and_help_import_no_heavy_library(argv: list[str]) -> None:
    """paramiko, deepdiff, sqlite-utils and PyYAML load lazily, keeping start-up fast."""
    import subprocess
    import sys

    code = (
        "import sys; from platformctl.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
        "print(code, sorted(m for m in ('paramiko', 'deepdiff', 'sqlite_utils', 'yaml')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "0 []"
    if "--help" in argv:
        assert "Usage: platformctl" in out


def test_the_command_leaves_fast_with_its_output_whole_and_its_store_closed(
    tmp_path: Path,
) -> None:
    """The console script skips the interpreter's teardown (os._exit): what it printed must
    still all arrive, with the exit code, and the store must be closed (its WAL folded back
    in), not left to the teardown that no longer happens."""
    import json
    import subprocess
    import sys

    from tests.conftest import write_module

    for i in range(120):  # a report larger than a pipe buffer
        write_module(
            tmp_path / "platform",
            f"web{i}",
            {
                "host": "nowhere",
                "orchestrator": "docker",
                "container": f"w{i}",
                "image_observed": "nginx:1",
            },
        )
    config = tmp_path / "ssh_config"
    config.write_text("Host nowhere\n  HostName 127.0.0.1\n  Port 1\n")  # refused at once
    db = tmp_path / "s.db"
    argv = ["--root", str(tmp_path / "platform"), "--db", str(db)]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "platformctl",
            "drift-check",
            "--json",
            "--ssh-config",
            str(config),
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 5, proc.stderr
    assert len(proc.stdout) > 65536
    assert len(json.loads(proc.stdout)["modules"]) == 120
    assert db.exists() and not db.with_name("s.db-wal").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "platformctl", "snapshots", "list", "--json", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert [s["status"] for s in json.loads(listed.stdout)["snapshots"]] == ["unreachable"]


def test_timeouts_that_are_no_number_of_seconds_are_usage_errors(
    platform: Path, run_cli: Runner, tmp_path: Path
) -> None:
    """`nan` passes a range check (every comparison with it is false), and `1e10` is past
    what a socket timeout holds: both were taken, and every host then failed with a Python
    error, exit 8."""
    for option in ("--command-timeout", "--connect-timeout"):
        for value in ("nan", "inf", "-inf", "1e10"):
            result = run_cli(
                "drift-check", option, value, "--root", str(platform), "--db", str(tmp_path / "d")
            )
            assert result.code == 1, (option, value, result.err)
            assert_one_line_error(result.err, option)
    assert not (tmp_path / "d").exists()


def test_names_longer_than_the_file_system_takes_are_one_line(
    platform: Path, run_cli: Runner, tmp_path: Path
) -> None:
    long = str(tmp_path / ("a" * 5000))
    result = run_cli("snapshots", "list", "--db", long)
    assert result.code == 1
    assert_one_line_error(result.err, "File name too long", "check --db")
    assert len(result.err) < 400
    result = run_cli("drift-check", "--root", long, "--db", str(tmp_path / "d"))
    assert result.code == 1
    assert_one_line_error(result.err, "File name too long", "check --root")


def test_the_version_a_store_records_is_shown_escaped(run_cli: Runner, tmp_path: Path) -> None:
    """A store file comes from anywhere (copied, shared, written by another program): its
    text reaches a terminal only escaped."""
    from datetime import UTC, datetime

    from platformctl.collector.model import Collection, HostResult, HostState, HostStatus
    from platformctl.snapshots.store import Store

    db = tmp_path / "s.db"
    store = Store.open(db)
    hostile = "0.1.0\x1b]0;pwned\x07\x1b[2J\nFORGED"
    taken = datetime(2026, 1, 1, tzinfo=UTC)
    store.save(Collection(taken, (HostResult("h", HostStatus.OK, state=HostState()),)), hostile)
    store.close()
    for args in (("snapshots", "list"), ("snapshots", "show", "1")):
        result = run_cli(*args, "--db", str(db))
        assert result.code == 0, result.err
        assert "\x1b" not in result.out and "\x07" not in result.out
        assert "\nFORGED" not in result.out


@pytest.mark.parametrize(
    "args",
    [
        ["snapshots", "list", "--db", "~nosuchuser/x.db"],
        ["drift-check", "--root", "~nosuchuser/platform"],
        ["drift-check", "--root", "{root}", "--ssh-config", "~nosuchuser/ssh_config"],
        ["report", "--root", "{root}", "--output", "~nosuchuser/report.html"],
    ],
)
def test_a_tilde_of_no_known_user_is_one_line_and_makes_no_folder(
    tmp_path: Path, run_cli: Runner, args: list[str]
) -> None:
    """`~nosuchuser/…` raised a RuntimeError traceback; left as it is, it would name a folder
    `~nosuchuser` in the working folder."""
    root = tmp_path / "platform"
    write_module(
        root,
        "web",
        {"host": "h", "orchestrator": "docker", "container": "web", "image_observed": "a/b:1"},
    )
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli(*(a.format(root=root) for a in args), cwd=work)
    assert result.code == 1
    option = next(a for a in args if "~nosuchuser" in a)
    option = args[args.index(option) - 1]
    assert_one_line_error(
        result.err, f"{option} ~nosuchuser/", "no home folder is known for ~nosuchuser"
    )
    assert list(work.iterdir()) == []


def test_a_working_folder_removed_under_the_shell_is_named(tmp_path: Path) -> None:
    """Without --root the repository is looked for from the working folder; one removed
    under the shell was a traceback, then a bare "No such file or directory"."""
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    script = f"import os; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
    script += "from platformctl.cli import main; main(['drift-check', '--snapshot', 'latest'])"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "the working folder no longer exists; cd to the")
