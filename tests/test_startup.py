"""The order of a run's start-up: hosts are contacted before the heavy imports.

No timings here (bench/onerun.py measures them): these tests pin the order that makes a run
fast, in a fresh interpreter each, since the test process has long imported everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
