"""--metrics-file and stdout in a scheduled run: what is at the metrics path is replaced only
when it is a regular file, and a run whose stdout cannot take its output still notifies,
writes its metrics and exits with its verdict (docs/notify.md, "Metrics")."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import assert_one_line_error
from tests.test_local_bounds import EMPTY_DOCKER, local_module


def scheduled_run(
    tmp_path: Path, metrics: str, stdout: object = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    """A live drift-check of one module on localhost (a docker stand-in answering as an empty
    engine: the module is missing, exit 2) with ``--metrics-file metrics``."""
    docker = tmp_path / "docker"
    docker.write_text(f"#!/bin/sh\n{EMPTY_DOCKER}")
    docker.chmod(0o755)
    root = local_module(tmp_path / "platform")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "platformctl",
            "drift-check",
            "--root",
            str(root),
            "--db",
            str(tmp_path / "store.db"),
            "--docker-command",
            str(docker),
            "--metrics-file",
            metrics,
        ],  # fmt: skip
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def exit_code_metric(path: Path) -> str:
    (line,) = [x for x in path.read_text().splitlines() if x.startswith("platformctl_exit_code ")]
    return line.split()[1]


def test_a_fifo_a_device_or_a_dangling_link_at_the_metrics_path_is_left_as_it_is(
    tmp_path: Path,
) -> None:
    """prometheus_client renames over whatever the path names: run as root, a run with
    `--metrics-file /dev/null` replaced the device with a regular file for every user."""
    fifo = tmp_path / "fifo.prom"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling.prom"
    dangling.symlink_to(tmp_path / "nowhere.prom")
    cases = [(fifo, "not a regular file (a FIFO); left as it is")]
    cases.append(
        (dangling, f"a symbolic link to {tmp_path / 'nowhere.prom'}, which does not exist")
    )
    if os.getuid() == 0:
        null = tmp_path / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        cases.append((null, "not a regular file (a device); left as it is"))
    for path, said in cases:
        run = scheduled_run(tmp_path, str(path))
        assert run.returncode == 2, run.stderr  # the verdict is kept
        assert_one_line_error(run.stderr, f"cannot write metrics file {path}: {said}")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert dangling.is_symlink() and not (tmp_path / "nowhere.prom").exists()
    if os.getuid() == 0:
        assert stat.S_ISCHR((tmp_path / "null").lstat().st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_linked_metrics_file_is_replaced_through_the_link_keeping_its_mode(
    tmp_path: Path,
) -> None:
    """The link stays a link and its target gets the metrics (it was replaced by a regular
    file, the target left stale); a 0640 file stays 0640 (it came out 0600 under umask 077,
    and a collector of another user lost it)."""
    target = tmp_path / "textfile" / "platformctl.prom"
    target.parent.mkdir()
    target.write_text("# old\n")
    target.chmod(0o640)
    link = tmp_path / "link.prom"
    link.symlink_to(target)
    old_umask = os.umask(0o077)
    try:
        run = scheduled_run(tmp_path, str(link))
    finally:
        os.umask(old_umask)
    assert run.returncode == 2 and run.stderr == ""
    assert link.is_symlink() and exit_code_metric(target) == "2.0"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["platformctl.prom"]


def test_a_long_name_a_tilde_and_a_trailing_slash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 250-character name failed ("File name too long": the library's temporary file adds
    to it); `~` was not expanded; `x.prom/` wrote a file called `x.prom`."""
    long_name = "m" * 245 + ".prom"
    run = scheduled_run(tmp_path, str(tmp_path / long_name))
    assert run.returncode == 2 and run.stderr == ""
    assert exit_code_metric(tmp_path / long_name) == "2.0"
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    run = scheduled_run(tmp_path, "~/m.prom")
    assert run.returncode == 2 and exit_code_metric(home / "m.prom") == "2.0"
    run = scheduled_run(tmp_path, "x.prom/")
    assert run.returncode == 1
    assert_one_line_error(run.stderr, "--metrics-file x.prom/ names a folder; name a file")
    assert not (tmp_path / "x.prom").exists()


def test_a_run_whose_stdout_is_full_still_writes_its_metrics_and_keeps_its_verdict(
    tmp_path: Path,
) -> None:
    """A cron job's log on a full disk: the run ended in a traceback, exit 1, and wrote no
    metrics (the file still said the previous run's exit code)."""
    metrics = tmp_path / "m.prom"
    with open("/dev/full", "w") as full:
        run = scheduled_run(tmp_path, str(metrics), stdout=full)
    assert run.returncode == 2
    assert_one_line_error(run.stderr, "cannot write the output: No space left on device")
    assert exit_code_metric(metrics) == "2.0"
    with open("/dev/full", "w") as full:
        listing = subprocess.run(
            [
                sys.executable,
                "-m",
                "platformctl",
                "snapshots",
                "list",
                "--db",
                str(tmp_path / "store.db"),
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert listing.returncode == 1
    assert_one_line_error(listing.stderr, "cannot write the output: No space left on device")


def test_a_file_in_a_folder_the_writer_may_not_write_is_written_in_place() -> None:
    """A report pre-created for its writer in root's folder (`/var/www/status.html`): the
    replacement needs a new file beside it, which the folder refuses; it is written in
    place, keeping its group, its attributes and its second name. The writer made it a
    "Permission denied" that blamed the file."""
    if os.getuid() != 0:
        pytest.skip("writing as another user needs root")
    import shutil
    import tempfile

    from platformctl.paths import replace_file
    from tests.test_observe_edit import as_nobody

    folder = Path(tempfile.mkdtemp(prefix="platformctl-www-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        page = folder / "status.html"
        page.write_text("<p>old</p>")
        os.chown(page, 65534, 100)
        page.chmod(0o640)
        os.setxattr(page, "user.served-by", b"www")
        os.link(page, folder / "also.html")
        assert as_nobody(lambda: replace_file(page, b"<p>new</p>")) == ""
        info = page.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (65534, 100, 0o640)
        assert page.read_bytes() == (folder / "also.html").read_bytes() == b"<p>new</p>"
        assert os.getxattr(page, "user.served-by") == b"www"
        assert sorted(p.name for p in folder.iterdir()) == ["also.html", "status.html"]
        # One the writer may not write is refused, though nothing else would stop a rename.
        page.chmod(0o444)
        folder.chmod(0o777)
        assert as_nobody(lambda: replace_file(page, b"x")) == (
            "not writable by this user (mode 0444, owner 65534:100); left as it is"
        )
        assert page.read_bytes() == b"<p>new</p>"
    finally:
        shutil.rmtree(folder)


def test_a_file_on_a_read_only_file_system_says_so(small_disk: Path) -> None:
    """observe --write said "not writable by this user (mode 0644 …)", as if the file's mode
    were the cause."""
    import subprocess as sp

    from platformctl.declared.edit import EditProblem, plan_edit, write_edit
    from platformctl.paths import replace_file
    from tests.test_observe_edit import CORPUS, NEW, put

    page = small_disk / "r.html"
    page.write_text("old")
    manifest = put(small_disk, (CORPUS / "plain-string.yaml").read_bytes())
    edit = plan_edit(small_disk, manifest, NEW)
    sp.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(OSError) as caught:
            replace_file(page, b"new")
        assert caught.value.strerror == "Read-only file system"
        with pytest.raises(EditProblem) as refused:
            write_edit(small_disk, edit)
        assert str(refused.value) == f"{manifest}: cannot write: Read-only file system"
    finally:
        sp.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert page.read_text() == "old" and manifest.read_bytes() == edit.before


def test_a_reader_that_left_is_no_message_and_the_run_counts(tmp_path: Path) -> None:
    """`drift-check | head` in a scheduled job: the reader left, which every command passes
    over in silence; the run still writes its metrics and exits with its verdict."""
    metrics = tmp_path / "m.prom"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = scheduled_run(tmp_path, str(metrics), stdout=write_end)
    finally:
        os.close(write_end)
    assert (run.returncode, run.stderr) == (2, "")
    assert exit_code_metric(metrics) == "2.0"


def _acl(*entries: tuple[int, int, int]) -> bytes:
    """A POSIX ACL as the kernel stores it in an extended attribute: version 2, then
    (tag, permissions, id) per entry."""
    import struct

    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


NO_ID = 0xFFFFFFFF
USER_OBJ, USER, GROUP_OBJ, MASK, OTHER = 0x01, 0x02, 0x04, 0x10, 0x20


def test_a_folders_default_acl_does_not_reach_a_replaced_file(tmp_path: Path) -> None:
    """The temporary file took the folder's default ACL, which the old file did not have:
    uid 2000 could read a 0640 file after a run, with `ls -l` showing the same mode."""
    from platformctl.paths import replace_file

    folder = tmp_path / "shared"
    folder.mkdir()
    default = _acl(
        (USER_OBJ, 6, NO_ID), (USER, 6, 2000), (GROUP_OBJ, 4, NO_ID), (MASK, 6, NO_ID),
        (OTHER, 0, NO_ID),
    )  # fmt: skip
    try:
        os.setxattr(folder, "system.posix_acl_default", default)
    except OSError as exc:
        pytest.skip(f"this file system takes no ACLs: {exc.strerror}")
    page = folder / "r.html"
    os.close(os.open(page, os.O_WRONLY | os.O_CREAT, 0o640))
    os.removexattr(page, "system.posix_acl_access")  # made before the folder had its ACL
    page.chmod(0o640)
    replace_file(page, b"new")
    assert page.read_bytes() == b"new"
    assert "system.posix_acl_access" not in os.listxattr(page)
    assert stat.S_IMODE(page.stat().st_mode) == 0o640


def test_a_bind_mounted_or_immutable_file(tmp_path: Path) -> None:
    """A file bind-mounted into place cannot be renamed over (EBUSY): it is written in
    place. An immutable one is refused saying its mode is not the cause."""
    if os.getuid() != 0:
        pytest.skip("mounting and chattr need root")
    from platformctl.paths import replace_file

    source, target = tmp_path / "source.html", tmp_path / "status.html"
    source.write_text("old")
    target.write_text("")
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        replace_file(target, b"new")
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert source.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.html", "status.html"]
    subprocess.run(["chattr", "+i", str(source)], check=True)
    try:
        with pytest.raises(OSError) as caught:
            replace_file(source, b"newer")
    finally:
        subprocess.run(["chattr", "-i", str(source)], check=True)
    assert str(caught.value) == (
        "not writable (its mode 0644 would allow it: an immutable file, or an ACL?); left as it is"
    )
    assert source.read_bytes() == b"new"


def test_a_file_deleted_before_it_is_written_in_place_is_not_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In place (here: the folder takes no new file), a file deleted after it was looked at
    came back empty, and observe then refused to write it."""
    import platformctl.paths as paths

    page = tmp_path / "r.html"
    page.write_text("old")

    def deleted_meanwhile(folder: Path, mode: int) -> None:
        page.unlink()
        return None

    monkeypatch.setattr(paths, "_temporary", deleted_meanwhile)
    with pytest.raises(FileNotFoundError):
        paths.replace_file(page, b"new")
    assert not page.exists()


def test_a_stdout_opened_for_reading_is_named_as_the_output(tmp_path: Path) -> None:
    """`platformctl snapshots list 1<file`: a bare "Bad file descriptor", as if something
    else had failed."""
    scheduled_run(tmp_path, str(tmp_path / "m.prom"))  # a store to list
    (tmp_path / "in.txt").write_text("")
    with open(tmp_path / "in.txt") as read_only:
        listing = subprocess.run(
            [sys.executable, "-m", "platformctl", "snapshots", "list", "--db",
             str(tmp_path / "store.db")],
            stdout=read_only, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert listing.returncode == 1
    assert_one_line_error(listing.stderr, "cannot write the output: Bad file descriptor")


def test_the_new_content_of_a_private_file_is_never_readable_to_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary file was made 0666 less the umask and narrowed only later: another
    user who opened it in between read the new content of a 0600 file."""
    import platformctl.paths as paths

    secret = tmp_path / "secret.html"
    secret.write_text("old")
    secret.chmod(0o600)
    seen: list[int] = []
    same = paths._same_but_content

    def looked_at(fd: int, target: Path, old: os.stat_result) -> bool:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))  # as the file was made
        return same(fd, target, old)

    monkeypatch.setattr(paths, "_same_but_content", looked_at)
    old_umask = os.umask(0o022)
    try:
        paths.replace_file(secret, b"new secret")
    finally:
        os.umask(old_umask)
    assert seen == [0o600]
    assert secret.read_bytes() == b"new secret" and stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_files_bind_mounted_on_or_from_a_read_only_file_system(
    tmp_path: Path, small_disk: Path
) -> None:
    """A writable file bind-mounted into a read-only folder (`docker --read-only -v
    ./status.html:…`) is written in place; it was refused, the new file's folder being
    read-only. A file bind-mounted read-only in a writable folder says so; it blamed an
    immutable flag or an ACL."""
    from platformctl.paths import replace_file

    source = tmp_path / "status.html"
    source.write_text("old")
    target = small_disk / "status.html"
    target.write_text("")
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        replace_file(target, b"new")
    finally:
        subprocess.run(["umount", str(target)], check=True)
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert source.read_bytes() == b"new"
    subprocess.run(["mount", "--bind", str(source), str(source)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(source)], check=True)
    try:
        with pytest.raises(OSError) as caught:
            replace_file(source, b"newer")
    finally:
        subprocess.run(["umount", str(source)], check=True)
    assert caught.value.strerror == "Read-only file system"
    assert source.read_bytes() == b"new"


def test_streams_of_the_process_are_not_files(tmp_path: Path) -> None:
    """`report --output /dev/stdout >> app.log` emptied the log (a replacement of what
    /dev/stdout leads to), and `>&-` was an AttributeError traceback."""
    from platformctl.paths import replace_file

    with pytest.raises(OSError) as caught:
        replace_file(Path("/dev/stdout"), b"x")
    assert str(caught.value) == (
        "a stream of this process (/dev/stdout?), not a file; left as it is"
    )
    scheduled_run(tmp_path, str(tmp_path / "m.prom"))  # a store to list
    log = tmp_path / "app.log"
    log.write_text("earlier lines\n")
    listed = subprocess.run(
        ["sh", "-c", 'exec "$0" -m platformctl snapshots list --db "$1" >&-', sys.executable,
         str(tmp_path / "store.db")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (listed.returncode, listed.stderr) == (0, "")
    with open(log, "a") as appended:
        run = subprocess.run(
            [sys.executable, "-m", "platformctl", "report", "--root",
             str(tmp_path / "platform"), "--db", str(tmp_path / "store.db"),
             "--output", "/dev/stdout"],
            stdout=appended, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    text = log.read_text()
    assert text.startswith("earlier lines\n") and "<html" in text
