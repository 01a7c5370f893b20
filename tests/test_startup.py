"""The order of a run's start-up: hosts are contacted before the heavy imports.

No timings here (bench/onerun.py measures them): these tests pin the order that makes a run
fast, in a fresh interpreter each, since the test process has long imported everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_module

HEAVY = ("paramiko", "sqlite_utils", "deepdiff", "platformctl.differ", "invoke")


def run_python(code: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_collection_starts_before_paramiko_the_store_writer_and_the_differ_load(
    tmp_path: Path,
) -> None:
    write_module(
        tmp_path,
        "web",
        {
            "host": "nowhere",
            "orchestrator": "docker",
            "container": "web",
            "image_observed": "nginx:1.27",
        },
    )
    config = tmp_path / "ssh_config"
    config.write_text("Host nowhere\n  HostName 127.0.0.1\n  Port 1\n")  # refused at once
    code = f"""
import sys
from platformctl.collector import fanout

loaded_at_start = []
start = fanout.Fanout.__init__

def recording(self, *args, **kwargs):
    loaded_at_start.extend(m for m in {HEAVY!r} if m in sys.modules)
    start(self, *args, **kwargs)

fanout.Fanout.__init__ = recording
from platformctl.cli import main
try:
    main(["drift-check", "--root", {str(tmp_path)!r}, "--ssh-config", {str(config)!r},
          "--db", {str(tmp_path / "s.db")!r}, "--connect-timeout", "5"])
except SystemExit as exc:
    print(exc.code, loaded_at_start, "invoke" in sys.modules)
"""
    # exit 5: the one host refused; nothing heavy was loaded when collecting began, and
    # paramiko, loaded since, did not bring invoke with it.
    assert run_python(code, tmp_path) == "5 [] False"


def test_the_fallback_resolver_still_runs_match_exec_without_invoke_at_import(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    config = tmp_path / "config"
    config.write_text(f'Match exec "touch {marker}"\n  Port 2222\n')
    code = f"""
import sys
from pathlib import Path
from platformctl.collector.paramiko_import import import_paramiko
import_paramiko()
hidden = "invoke" not in sys.modules
from platformctl.collector.sshconfig import SshConfigFile
print(hidden, SshConfigFile(Path({str(config)!r})).lookup("web").port)
"""
    assert run_python(code, tmp_path) == "True 2222"
    assert marker.exists()


def test_importing_paramiko_leaves_invoke_importable_for_others(tmp_path: Path) -> None:
    code = """
import sys
from platformctl.collector.paramiko_import import import_paramiko
import_paramiko()
import invoke
print(type(invoke).__name__, "paramiko" in sys.modules)
"""
    assert run_python(code, tmp_path) == "module True"


def test_paramiko_announces_its_installed_version_and_importlib_metadata_is_not_loaded(
    tmp_path: Path,
) -> None:
    code = """
import sys
from platformctl.collector.paramiko_import import import_paramiko
import_paramiko()
loaded = "importlib.metadata" in sys.modules
import paramiko.transport
from importlib.metadata import version
print(loaded, paramiko.transport.Transport._CLIENT_ID, "paramiko_" + version("paramiko"))
"""
    loaded, banner, expected = run_python(code, tmp_path).split()
    assert (loaded, banner) == ("False", expected)


def dist_info(folder: Path, name: str, metadata: str | None) -> Path:
    info = folder / name
    info.mkdir(parents=True)
    if metadata is not None:
        (info / "METADATA").write_text(metadata)
    return folder


PLAIN = "Metadata-Version: 2.1\nName: paramiko\nVersion: 9.8.7\n\nThe body. Version: 0\n"


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ([("paramiko-9.8.7.dist-info", PLAIN)], "9.8.7"),
        ([("Paramiko-9.8.7.dist-info", PLAIN)], "9.8.7"),
        ([("other-1.0.dist-info", "Version: 1.0\n"), ("paramiko-9.8.7.dist-info", PLAIN)], "9.8.7"),
        ([("paramiko-9.8.7.egg-info", PLAIN)], None),
        ([("paramiko-9.8.7.dist-info", PLAIN), ("paramiko-1.0.dist-info", PLAIN)], None),
        ([("paramiko-9.8.7.dist-info", None)], None),
        ([("paramiko-9.8.7.dist-info", "Name: paramiko\n\nVersion: 1\n")], None),
        ([], None),
    ],
    ids=[
        "plain",
        "capitalised",
        "among-others",
        "egg-info",
        "two",
        "no-metadata",
        "no-header",
        "none",
    ],
)
def test_paramikos_version_is_read_where_importlib_metadata_reads_it_or_left_to_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: list[tuple[str, str | None]],
    expected: str | None,
) -> None:
    from platformctl.collector.paramiko_import import _dist_info_version

    empty = tmp_path / "empty"
    empty.mkdir()
    site = tmp_path / "site"
    site.mkdir()
    for name, metadata in layout:
        dist_info(site, name, metadata)
    later = dist_info(tmp_path / "later", "paramiko-0.1.dist-info", PLAIN.replace("9.8.7", "0.1"))
    monkeypatch.setattr(sys, "path", [str(tmp_path / "missing"), str(empty), str(site), str(later)])
    # The first folder holding paramiko's metadata decides, as for importlib.metadata.
    assert _dist_info_version("paramiko") == (expected if layout else "0.1")


def test_an_archive_on_the_path_before_paramiko_leaves_the_answer_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformctl.collector.paramiko_import import _dist_info_version

    archive = tmp_path / "lib.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    site = dist_info(tmp_path / "site", "paramiko-9.8.7.dist-info", PLAIN)
    monkeypatch.setattr(sys, "path", [str(archive), str(site)])
    assert _dist_info_version("paramiko") is None


def test_the_stand_in_answers_other_questions_with_the_real_importlib_metadata() -> None:
    import importlib.metadata

    from platformctl.collector.paramiko_import import _metadata_stand_in

    stand_in = _metadata_stand_in()
    assert stand_in is not None
    assert stand_in.version("paramiko") == importlib.metadata.version("paramiko")
    assert stand_in.version("click") == importlib.metadata.version("click")
    assert stand_in.distribution("click").metadata["Name"] == "click"


def test_an_unreadable_folder_on_the_path_leaves_the_answer_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from platformctl.collector import paramiko_import

    locked = tmp_path / "locked"
    locked.mkdir()
    site = dist_info(tmp_path / "site", "paramiko-9.8.7.dist-info", PLAIN)
    monkeypatch.setattr(sys, "path", [str(locked), str(site)])
    listdir = os.listdir

    def refusing(folder: str) -> list[str]:
        if folder == str(locked):
            raise PermissionError(13, "Permission denied", folder)
        return listdir(folder)

    monkeypatch.setattr(paramiko_import.os, "listdir", refusing)
    assert paramiko_import._dist_info_version("paramiko") is None
