"""Files of the platform repository: only regular files inside the root, size-capped before
they are read, and a root found by walking up only when the user owns its modules/ folder."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from platformctl.declared.compose import load_stack_dir
from platformctl.declared.files import MiB, RepoFileError, read_repo_file
from platformctl.declared.manifests import find_root, load_declared
from platformctl.declared.model import InvalidModule
from platformctl.errors import DeclaredStateError
from tests.conftest import Runner, write_compose, write_module

SECRET = "tok-3f9a1c-do-not-leak"


def compose_module(root: Path, name: str = "web", project: str = "apps") -> Path:
    return write_module(
        root,
        name,
        {
            "host": "localhost",
            "orchestrator": "docker-compose",
            "compose_service": "web",
            "compose_project": project,
            "image_observed": "nginx:1.25",
        },
    )


@pytest.fixture(params=["O_PATH", "realpath"])
def either_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs a test once through the kernel's O_PATH resolution and once as on a system
    without it (realpath, then an open with O_NOFOLLOW)."""
    if request.param == "realpath":
        import platformctl.declared.files as files

        monkeypatch.setattr(files, "_O_PATH", 0)


def test_env_symlinked_to_proc_environ_leaks_nothing_into_the_json(
    tmp_path: Path, run_cli: Runner
) -> None:
    root = tmp_path / "platform"
    stack = write_compose(root, "apps", {"web": {"image": "nginx:${TOKEN}"}})
    (stack.parent / ".env").symlink_to("/proc/self/environ")
    compose_module(root)
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--docker-command",
        "/bin/false",
        env={"TOKEN": SECRET, "PLATFORMCTL_TEST_TOKEN": SECRET},
    )
    assert SECRET not in result.out and SECRET not in result.err
    (module,) = result.json()["modules"]
    assert module["status"] == "invalid"
    assert "outside the platform root" in module["reason"]


def test_a_manifest_symlinked_outside_the_root_is_invalid(tmp_path: Path) -> None:
    root = tmp_path / "platform"
    write_module(root, "good", {"host": "edge", "orchestrator": "external"})
    outside = write_module(tmp_path / "elsewhere", "x", {"host": "e", "orchestrator": "external"})
    (root / "modules" / "sneaky").mkdir()
    (root / "modules" / "sneaky" / "module.yaml").symlink_to(outside)
    modules = {m.name: m for m in load_declared(root).modules}
    assert not isinstance(modules["good"], InvalidModule)
    assert isinstance(modules["sneaky"], InvalidModule)
    assert "outside the platform root" in modules["sneaky"].problem


def test_symlinks_that_stay_inside_the_root_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "platform"
    stack = write_compose(root, "apps", {"web": {"image": "nginx:${TAG}"}})
    (root / "shared.env").write_text("TAG=1.25\n")
    (stack.parent / ".env").symlink_to("../../shared.env")
    loaded = load_stack_dir(stack.parent, root)
    assert loaded is not None and loaded.problem is None
    assert loaded.services["web"].raw == "nginx:1.25"


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        # extends.file climbing out of the repository
        (
            {
                "compose.yaml": "services:\n  web:\n    extends: {file: ../../../out.yaml, "
                "service: base}\n"
            },
            "outside the platform root",
        ),
        # a COMPOSE_FILE entry naming a file outside, by a relative and an absolute path
        ({".env": "COMPOSE_FILE=../../../out.yaml\n"}, "outside the platform root"),
        ({".env": "COMPOSE_FILE={out}\n"}, "outside the platform root"),
        # the override itself a symlink to the outside file
        (
            {
                "compose.yaml": "services:\n  web:\n    image: nginx:1.24\n",
                "compose.override.yaml": "->{out}",
            },
            "outside the platform root",
        ),
    ],
)
def test_compose_files_reaching_outside_the_root_make_the_stack_invalid(
    tmp_path: Path, files: dict[str, str], fragment: str
) -> None:
    out = tmp_path / "out.yaml"
    out.write_text("services:\n  base:\n    image: evil:1\n  web:\n    image: evil:1\n")
    root = tmp_path / "platform"
    folder = root / "compose" / "apps"
    folder.mkdir(parents=True)
    for name, content in files.items():
        content = content.replace("{out}", str(out))
        if content.startswith("->"):
            (folder / name).symlink_to(content[2:])
        else:
            (folder / name).write_text(content)
    compose_module(root)
    stack = load_stack_dir(folder, root)
    assert stack is not None and fragment in (stack.problem or "")
    (module,) = load_declared(root).modules
    assert isinstance(module, InvalidModule) and fragment in module.problem
    assert "evil" not in repr(module)


def test_a_fifo_is_refused_and_does_not_hang(tmp_path: Path, run_cli: Runner) -> None:
    root = tmp_path / "platform"
    stack = write_compose(root, "apps", {"web": {"image": "nginx:1.25"}})
    os.mkfifo(stack.parent / ".env")
    write_module(root, "other", {"host": "edge", "orchestrator": "external"})
    (root / "modules" / "piped").mkdir()
    os.mkfifo(root / "modules" / "piped" / "module.yaml")
    compose_module(root)
    # A hang would blow the timeout and fail the test.
    result = run_cli("drift-check", "--json", "--root", str(root), "web", "piped", timeout=60)
    modules = {m["module"]: m for m in result.json()["modules"]}
    assert modules["piped"]["status"] == "invalid"
    assert "not a regular file (a FIFO)" in modules["piped"]["reason"]
    assert modules["web"]["status"] == "invalid"
    assert "not a regular file (a FIFO)" in modules["web"]["reason"]


def test_what_is_not_a_regular_file_is_named_in_the_refusal(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    for name, kind in [("fifo", "a FIFO"), ("folder", "a folder")]:
        with pytest.raises(RepoFileError) as caught:
            read_repo_file(tmp_path, tmp_path / name, 1024)
        assert str(caught.value) == f"{tmp_path / name}: not a regular file ({kind}); refused"
    # A socket is refused at once, by its kind, without an open.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(RepoFileError) as caught:
            read_repo_file(tmp_path, tmp_path / "sock", 1024)
        assert str(caught.value) == f"{tmp_path / 'sock'}: not a regular file (a socket); refused"


@pytest.mark.parametrize(
    ("kind", "device"),
    [(stat.S_IFCHR, os.makedev(1, 5)), (stat.S_IFBLK, os.makedev(7, 0))],
    ids=["character /dev/zero", "block /dev/loop0"],
)
def test_device_nodes_are_refused_as_devices(tmp_path: Path, kind: int, device: int) -> None:
    path = tmp_path / "node"
    try:
        os.mknod(path, kind | 0o600, device)
    except PermissionError:
        pytest.skip("making a device node needs root outside a user namespace")
    with pytest.raises(RepoFileError) as caught:
        read_repo_file(tmp_path, path, 1024)
    if ": cannot read: " in str(caught.value):
        # No driver behind the number, a container's device policy, or a nodev mount:
        # refused all the same, but before the kind could be read.
        pytest.skip(f"this machine does not open the node: {caught.value}")
    assert str(caught.value) == f"{path}: not a regular file (a device); refused"


def test_an_oversized_manifest_is_refused_without_being_read(tmp_path: Path) -> None:
    root = tmp_path / "platform"
    write_module(root, "fine", {"host": "edge", "orchestrator": "external"})
    huge = root / "modules" / "huge" / "module.yaml"
    huge.parent.mkdir(parents=True)
    with huge.open("wb") as f:
        f.truncate(1536 * 1024 * 1024)  # sparse: 1.5 GB that takes no disk
    # In a fresh process, so its peak memory says whether the file was read.
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent
    # (here pytest, hundreds of MB), while VmHWM belongs to the new process's memory.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from platformctl.declared.manifests import load_declared\n"
        "ms = {m.name: m for m in load_declared(Path(sys.argv[1])).modules}\n"
        "print(ms['huge'].problem)\n"
        "status = Path('/proc/self/status').read_text().splitlines()\n"
        "print(next(line.split()[1] for line in status if line.startswith('VmHWM:')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    problem, peak_kib = run.stdout.splitlines()
    assert "larger than 4 MiB" in problem
    assert int(peak_kib) < 200 * 1024


def test_an_oversized_env_file_makes_the_stack_invalid(tmp_path: Path) -> None:
    root = tmp_path / "platform"
    stack = write_compose(root, "apps", {"web": {"image": "nginx:1.25"}})
    (stack.parent / ".env").write_bytes(b"# padding\n" * 200_000)  # 2 MB
    loaded = load_stack_dir(stack.parent, root)
    assert loaded is not None and "larger than 1 MiB" in (loaded.problem or "")


def test_a_file_at_the_cap_is_read_and_one_byte_more_is_not(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_repo_file(tmp_path, path, 100) == b"x" * 100
    with pytest.raises(RepoFileError, match="larger than 99 bytes"):
        read_repo_file(tmp_path, path, 99)


@pytest.mark.usefixtures("either_reader")
def test_a_file_that_grew_after_its_size_was_taken_is_read_whole_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read asks for the size the file had, plus one byte: a file written to since then
    must still come back whole (never cut at the old size), and past the cap be refused."""
    import platformctl.declared.files as files

    real_fstat = os.fstat

    def earlier(fd: int) -> os.stat_result:  # the size as it was before the file grew
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 10, *info[7:10]))

    monkeypatch.setattr(files.os, "fstat", earlier)
    path = tmp_path / "grown.yaml"
    content = b"".join(b"line %d\n" % i for i in range(300_000))  # over a MiB: several reads
    path.write_bytes(content)
    assert read_repo_file(tmp_path, path, 4 * MiB) == content
    with pytest.raises(RepoFileError, match="larger than 2 MiB"):
        read_repo_file(tmp_path, path, 2 * MiB)


@pytest.mark.usefixtures("either_reader")
def test_a_short_read_is_not_taken_for_the_end_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read may return part of a file without being at its end (network and FUSE
    filesystems, or an I/O error after part of the file, which only the next read reports):
    a manifest cut short would parse and silently lose keys. Read whole, or refused."""
    import errno

    import platformctl.declared.files as files

    real_read, real_fstat = os.read, os.fstat
    path = tmp_path / "module.yaml"
    content = b"".join(b"key%d: value\n" % i for i in range(100))
    path.write_bytes(content)

    def in_pieces(fd: int, n: int) -> bytes:
        return real_read(fd, min(n, 300))

    monkeypatch.setattr(files.os, "read", in_pieces)
    assert read_repo_file(tmp_path, path, MiB) == content

    def sizeless(fd: int) -> os.stat_result:  # a filesystem that does not know the size
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 0, *info[7:10]))

    monkeypatch.setattr(files.os, "fstat", sizeless)
    assert read_repo_file(tmp_path, path, MiB) == content
    monkeypatch.setattr(files.os, "fstat", real_fstat)

    calls: list[int] = []

    def failing(fd: int, n: int) -> bytes:
        calls.append(n)
        if len(calls) > 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read(fd, 500)

    monkeypatch.setattr(files.os, "read", failing)
    with pytest.raises(RepoFileError, match="cannot read: Input/output error"):
        read_repo_file(tmp_path, path, MiB)


def test_the_size_cap_is_said_in_mib_only_when_it_is_a_whole_number_of_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f"
    with path.open("wb") as f:
        f.truncate(3 * MiB + 2)
    for cap, said in [(2 * MiB, "2 MiB"), (3 * MiB + 1, f"{3 * MiB + 1} bytes")]:
        with pytest.raises(RepoFileError) as caught:
            read_repo_file(tmp_path, path, cap)
        assert str(caught.value) == f"{path}: file is larger than {said}; refused"


def test_walking_up_passes_over_a_modules_folder_owned_by_someone_else(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    mine = tmp_path / "mine"
    write_module(mine, "a", {"host": "edge", "orchestrator": "external"})
    theirs = mine / "shared"
    write_module(theirs, "planted", {"host": "edge", "orchestrator": "external"})
    os.chown(theirs / "modules", 65534, 65534)
    deep = theirs / "x" / "y"
    deep.mkdir(parents=True)
    # The foreign modules/ is nearer, but the user's own repository is the one found.
    assert find_root(None, start=deep) == mine.resolve()
    # With no repository of the user's own above, it says what it passed over.
    os.chown(mine / "modules", 65534, 65534)
    with pytest.raises(DeclaredStateError, match="passed over .*owned by uid 65534"):
        find_root(None, start=deep)
    # --root is the user's explicit choice.
    assert find_root(str(theirs), start=deep) == theirs.resolve()


def test_the_resolved_path_is_realpaths_for_every_kind_of_entry(tmp_path: Path) -> None:
    """Files are resolved by the kernel (one lookup) where it can; what it answers must be what
    os.path.realpath answers, which decides "inside the root"."""
    from platformctl.declared.files import _realpath

    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "sub" / "file.yaml").write_text("a: 1\n")
    os.mkfifo(real / "fifo")
    links = tmp_path / "links"
    links.mkdir()
    (links / "to-file").symlink_to(real / "sub" / "file.yaml")
    (links / "to-dir").symlink_to("../real/sub")
    (links / "chain").symlink_to("to-dir/file.yaml")
    (links / "dangling").symlink_to(tmp_path / "nowhere" / "file.yaml")
    (links / "to-proc").symlink_to("/proc/self/environ")
    cases = [
        real / "sub" / "file.yaml",
        real / "fifo",
        links / "to-file",
        links / "to-dir" / "file.yaml",
        links / "chain",
        links / "dangling",
        links / "to-proc",
        links / "to-dir" / ".." / "sub" / "file.yaml",
        tmp_path / "missing.yaml",
    ]
    for path in cases:
        assert _realpath(path) == os.path.realpath(path), path


def test_the_kernel_answers_without_realpath_for_files_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformctl.declared import files

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file.yaml").write_text("a: 1\n")
    (tmp_path / "link").symlink_to("sub")
    expected = os.path.realpath(tmp_path / "link" / "file.yaml")

    def refuse(path: object) -> str:
        raise AssertionError("realpath used")

    monkeypatch.setattr(files.os.path, "realpath", refuse)
    assert files._realpath(tmp_path / "link" / "file.yaml") == expected


def test_without_o_path_files_are_resolved_and_refused_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformctl.declared import files

    monkeypatch.setattr(files, "_O_PATH", 0)  # as on a kernel without it
    (tmp_path / "inside.yaml").write_text("a: 1\n")
    (tmp_path / "out").symlink_to("/etc/hostname")
    assert read_repo_file(tmp_path, tmp_path / "inside.yaml", MiB) == b"a: 1\n"
    with pytest.raises(RepoFileError, match="outside the platform root"):
        read_repo_file(tmp_path, tmp_path / "out", MiB)


def test_a_folder_swapped_for_a_symlink_after_the_check_cannot_lead_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file that passed the root check is the one opened: a folder on its path replaced
    by a symlink to somewhere else in between (a race another user could run) changes
    nothing."""
    from platformctl.declared import files

    root = tmp_path / "repo"
    (root / "modules" / "web").mkdir(parents=True)
    (root / "modules" / "web" / "module.yaml").write_text("checked: true\n")
    elsewhere = tmp_path / "elsewhere" / "web"
    elsewhere.mkdir(parents=True)
    (elsewhere / "module.yaml").write_text(f"secret: {SECRET}\n")
    checked = files._checked

    def check_then_swap(root_: Path, path: Path, real: str) -> str:
        result = checked(root_, path, real)
        (root / "modules" / "web").rename(root / "modules" / "web-old")
        (root / "modules" / "web").symlink_to(elsewhere)
        return result

    monkeypatch.setattr(files, "_checked", check_then_swap)
    data = read_repo_file(root, root / "modules" / "web" / "module.yaml", MiB)
    assert data == b"checked: true\n"


def test_a_looping_or_broken_link_in_modules_is_passed_over(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "web",
        {"host": "localhost", "orchestrator": "docker", "container": "w", "image_observed": "a:1"},
    )
    (tmp_path / "modules" / "loop").symlink_to("loop")
    (tmp_path / "modules" / "through-a-file").symlink_to("/etc/hostname/x")
    assert [m.name for m in load_declared(tmp_path).modules] == ["web"]


def test_a_path_the_kernel_names_back_unchanged_costs_no_second_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nearly every manifest: no symlink on the way, so the kernel's name for the file is the
    path asked for, and looking that name up again to check it names the same file is
    skipped. A path through a symlink is still looked up and checked."""
    from platformctl.declared import files

    root = tmp_path.resolve()
    (root / "sub").mkdir()
    (root / "sub" / "file.yaml").write_text("a: 1\n")
    (root / "link").symlink_to("sub")
    files._real_root(root)  # once per root, kept
    looked_up: list[str] = []
    stat = os.stat

    def counting(path: str, *args: object, **kwargs: object) -> os.stat_result:
        looked_up.append(str(path))
        return stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files.os, "stat", counting)
    assert read_repo_file(root, root / "sub" / "file.yaml", MiB) == b"a: 1\n"
    assert looked_up == []
    assert read_repo_file(root, root / "link" / "file.yaml", MiB) == b"a: 1\n"
    assert looked_up == [str(root / "sub" / "file.yaml")]


def test_a_kernel_answer_naming_another_file_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link through /proc/PID/root of a process in another mount namespace (a container)
    reads back as a path of that namespace, which may look inside the root here. Only a
    path that names the very file opened is believed; otherwise realpath decides."""
    from platformctl.declared import files

    root = tmp_path / "repo"
    root.mkdir()
    (root / "inside.yaml").write_text("harmless: true\n")
    outside = tmp_path / "outside.yaml"
    outside.write_text(f"secret: {SECRET}\n")
    (root / "evil.yaml").symlink_to(outside)
    readlink = os.readlink

    def other_namespace(path: str) -> str:
        answer = readlink(path)
        if str(path).startswith("/proc/self/fd/") and answer == str(outside):
            return str(root / "inside.yaml")  # how that namespace would name it
        return answer

    monkeypatch.setattr(files.os, "readlink", other_namespace)
    with pytest.raises(RepoFileError, match="outside the platform root"):
        read_repo_file(root, root / "evil.yaml", MiB)


@pytest.mark.usefixtures("either_reader")
def test_a_failed_check_leaves_no_descriptor_open(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to("/etc/hostname")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "file.yaml").write_text("a: 1\n")
    os.mkfifo(tmp_path / "fifo")
    with (tmp_path / "large").open("wb") as fh:
        fh.truncate(MiB + 1)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        for name in ("out", "loop", "missing", "fifo", "large"):
            with pytest.raises(RepoFileError):
                read_repo_file(tmp_path, tmp_path / name, MiB)
        with pytest.raises(AttributeError):
            read_repo_file("not a path", tmp_path / "file.yaml", MiB)  # type: ignore[arg-type]
    assert len(os.listdir("/proc/self/fd")) == before
