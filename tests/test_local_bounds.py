"""The local transport's bounds: the output cap while reading, and a timeout that ends the
process group and does not wait for pipes held by a child that left it.

Real processes throughout (``sh``, a docker stand-in, ``setsid``); no Docker daemon is needed
because the stand-in answers the way an empty engine does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.local_flood import flood_run
from platformctl.collector.local import LocalTransport
from platformctl.collector.script import build_script, parse_output
from tests.conftest import Runner, write_module

# An engine with no containers, as the real CLI answers the script's two first calls.
EMPTY_DOCKER = """\
case "$1 $2" in
  "info --format") echo '{"version":"24.0.7","driver":"overlay2"}' ;;
  "container ls") ;;
  *) echo "unexpected: $*" >&2; exit 64 ;;
esac
"""


def stand_in(tmp_path: Path, before: str) -> Path:
    """A docker stand-in that runs ``before`` and then answers as an empty engine."""
    path = tmp_path / "docker"
    path.write_text(f"#!/bin/sh\n{before}\n{EMPTY_DOCKER}")
    path.chmod(0o755)
    return path


@pytest.fixture
def escaped(tmp_path: Path) -> Iterator[Path]:
    """A file where a stand-in records the PID of the ``setsid`` child it leaves behind; the
    child is killed by that PID when the test ends."""
    pidfile = tmp_path / "escaped.pid"
    yield pidfile
    if pidfile.exists():
        for line in pidfile.read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line), signal.SIGKILL)


def local_module(root: Path) -> Path:
    write_module(
        root,
        "web",
        {
            "host": "localhost",
            "orchestrator": "docker",
            "container": "web",
            "image_observed": "nginx:1.25",
        },
    )
    return root


def test_a_flood_is_cut_at_the_cap_with_one_line_and_bounded_memory(tmp_path: Path) -> None:
    run = flood_run(tmp_path, "--json")
    assert run.code == 8, run.err
    assert "Traceback" not in run.err
    (host,) = json.loads(run.out)["hosts"]
    assert host["status"] == "error" and host["reason"] == "docker output exceeds 64 MiB"
    # The cap is 64 MiB; buffering the stream before checking it reached gigabytes.
    assert run.peak_rss < 200 * 1024 * 1024, run.peak_rss


def test_a_flood_in_the_table_is_one_host_problem_line_and_echoes_nothing(tmp_path: Path) -> None:
    run = flood_run(tmp_path)
    assert run.code == 8
    assert "  localhost: error: docker output exceeds 64 MiB" in run.out.splitlines()
    assert "flood" not in run.out + run.err and run.err == ""  # nothing of the stream echoed


def test_a_setsid_child_holding_the_pipes_does_not_hold_up_a_finished_run(
    tmp_path: Path, escaped: Path, run_cli: Runner
) -> None:
    # Only on `docker info`, whose stdout is sh's own: a child holding the pipe of a command
    # substitution ($(docker container ls)) would hold up sh itself, and that is the timeout.
    docker = stand_in(
        tmp_path, f'if [ "$1" = info ]; then setsid sleep 60 & echo $! >> {escaped}; fi'
    )
    start = time.monotonic()
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(local_module(tmp_path / "p")),
        "--docker-command",
        str(docker),
        "--command-timeout",
        "30",
    )
    elapsed = time.monotonic() - start
    assert escaped.exists()  # the child really was left behind, holding stdout and stderr
    (host,) = result.json()["hosts"]
    assert host["status"] == "ok", host
    assert result.json()["modules"][0]["status"] == "missing"
    assert elapsed < 25, elapsed  # not the 30 s timeout, nor the child's 60 s


def test_a_setsid_child_does_not_extend_the_command_timeout(
    tmp_path: Path, escaped: Path, run_cli: Runner
) -> None:
    docker = stand_in(tmp_path, f"setsid sleep 60 & echo $! >> {escaped}\nsleep 60")
    start = time.monotonic()
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(local_module(tmp_path / "p")),
        "--docker-command",
        str(docker),
        "--command-timeout",
        "3",
    )
    elapsed = time.monotonic() - start
    assert escaped.exists()
    (host,) = result.json()["hosts"]
    assert host["status"] == "error"
    assert host["reason"] == "the docker command did not finish within 3s"
    assert elapsed < 25, elapsed  # the children would hold the pipes for 60 s


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """Everything the script started in its own group ends with it, not only ``sh``."""
    pidfile = tmp_path / "grandchild.pid"
    docker = stand_in(tmp_path, f"sleep 60 & echo $! > {pidfile}\nwait")
    transport = LocalTransport(command_timeout=1)
    with pytest.raises(Exception, match="did not finish within 1s"):
        transport.run(build_script(str(docker)))
    pid = int(pidfile.read_text())
    # Reaped by init or still a zombie at worst; never a live sleep.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def test_stderr_beyond_its_cap_is_drained_and_dropped(tmp_path: Path) -> None:
    docker = stand_in(
        tmp_path, "if [ \"$1\" = info ]; then head -c 20000000 /dev/zero | tr '\\0' w >&2; fi"
    )
    output = LocalTransport(command_timeout=30).run(build_script(str(docker)))
    assert len(output.stderr) == 1024 * 1024
    assert parse_output(output.stdout, output.stderr).state.containers == ()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
