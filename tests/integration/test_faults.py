"""Faults and real-world SSH setups: interrupts, hangs, floods, bastions, agents."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Runner, StandardLab, write_module

PLATFORMCTL = [sys.executable, "-m", "platformctl"]


def module_on(
    root: Path, std: StandardLab, host: str, name: str = "mod", container: str | None = None
) -> str:
    container = container or f"f-{uuid.uuid4().hex[:8]}"
    if host not in ("beta", "refused", "silent"):  # every other alias reaches alpha
        std.lab.run_container(std.lab.engines["alpha"], container, std.images.web_10)
    write_module(
        root,
        name,
        {
            "host": host,
            "orchestrator": "docker",
            "container": container,
            "image_observed": std.ref(std.images.web_10),
        },
    )
    return container


def docker_wrapper(tmp_path: Path, body: str) -> str:
    """An executable standing in front of the real docker CLI (the operator's own
    --docker-command); ``body`` runs first, then the real docker with the same arguments."""
    path = tmp_path / f"docker-wrapper-{uuid.uuid4().hex[:6]}"
    path.write_text(f'#!/bin/sh\n{body}\nexec docker "$@"\n')
    path.chmod(0o755)
    return str(path)


def _has_schema(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE name = 'snapshots'")
            return rows.fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def test_ctrl_c_exits_130_promptly_and_leaves_the_store_intact(
    std_lab: StandardLab, tmp_path: Path
) -> None:
    root = tmp_path / "p"
    module_on(root, std_lab, "alpha", "fine")
    module_on(root, std_lab, "silent", "stuck")
    db = tmp_path / "store.db"
    args = [
        *PLATFORMCTL,
        "drift-check",
        *std_lab.args(root),
        "--db",
        str(db),
        "--connect-timeout",
        "30",
    ]
    # Ctrl-C's SIGINT as a terminal's foreground job gets it: a suite started in the
    # background (`.ci/run &`) runs with SIGINT ignored, and a child inherits that.
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Wait until the run holds an open store and is collecting (on a loaded machine start-up
    # alone can take seconds), then give alpha a moment: the silent host holds the run.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _has_schema(db):
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    waited = time.monotonic() - sent
    assert proc.returncode == 130
    assert waited < 5, waited  # not the 30 s the silent host would have cost
    assert "Traceback" not in err.decode() and "interrupted" in err.decode()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0  # absent
    conn.close()
    again = subprocess.run([*args[:-1], "2"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 8 and "stuck" in again.stdout


def test_progress_line_only_on_a_terminal(std_lab: StandardLab, tmp_path: Path) -> None:
    root = tmp_path / "p"
    module_on(root, std_lab, "silent", "stuck")
    args = [
        *PLATFORMCTL,
        "drift-check",
        *std_lab.args(root),
        "--db",
        str(tmp_path / "s.db"),
        "--connect-timeout",
        "2.5",
    ]
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 10)
        if not ready:
            break
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=30)
    os.close(controller)
    assert b"collecting: 0/1 hosts" in seen
    plain = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert "collecting" not in plain.stderr


def test_jobs_1_collects_every_host(std_lab: StandardLab, run_cli: Runner, tmp_path: Path) -> None:
    for host in ("alpha", "beta", "refused"):
        module_on(tmp_path, std_lab, host, f"m-{host}")
    result = run_cli(
        "drift-check",
        "--json",
        "--jobs",
        "1",
        *std_lab.args(tmp_path),
        "--connect-timeout",
        "2",
    )
    statuses = {m["module"]: m["status"] for m in result.json()["modules"]}
    assert statuses == {"m-alpha": "ok", "m-beta": "missing", "m-refused": "unreachable"}


@pytest.mark.parametrize("host", ["alpha", "localhost"])
def test_a_hanging_docker_is_cut_off_at_the_command_timeout(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path, host: str
) -> None:
    module_on(tmp_path, std_lab, host)
    hang = docker_wrapper(tmp_path, "sleep 30")
    start = time.monotonic()
    result = run_cli(
        "drift-check",
        "--json",
        *std_lab.args(tmp_path),
        "--docker-command",
        hang,
        "--command-timeout",
        "2",
        env={"DOCKER_HOST": std_lab.lab.engines["alpha"].socket},
    )
    assert time.monotonic() - start < 25  # far below the 30 s the remote would take
    (h,) = result.json()["hosts"]
    assert h["status"] == "error" and "docker command did not finish within 2s" in h["reason"]


def test_a_container_vanishing_between_listing_and_inspecting(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    keep = module_on(tmp_path, std_lab, "alpha", "kept")
    victim = module_on(tmp_path, std_lab, "alpha", "victim")
    marker = tmp_path / "removed"
    # Removes the victim for real, right after the listing and before the inspection.
    race = docker_wrapper(
        tmp_path,
        (
            f'if [ "$1 $2" = "container inspect" ] && [ ! -e {marker} ]; then\n'
            f"  touch {marker}; docker rm -f {victim} >/dev/null\nfi"
        ),
    )
    result = run_cli(
        "drift-check",
        "--json",
        *std_lab.args(tmp_path),
        "--docker-command",
        race,
    )
    doc = result.json()
    assert marker.exists()
    assert doc["hosts"][0]["status"] == "ok", doc["hosts"][0]
    statuses = {m["module"]: m["status"] for m in doc["modules"]}
    assert statuses == {"kept": "ok", "victim": "missing"}
    assert keep in {c["container"] for m in doc["modules"] for c in m["live"]}


@pytest.mark.parametrize("host", ["alpha", "localhost"])
@pytest.mark.parametrize("step", ["container inspect", "image inspect"])
def test_a_failing_inspect_makes_the_host_an_error_never_a_false_missing(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path, host: str, step: str
) -> None:
    """The container exists and runs; only the inspection of it fails. Reading that as "no
    containers" would report it missing (exit 2): the truth is "could not read" (exit 8)."""
    module_on(tmp_path, std_lab, host)
    broken = docker_wrapper(
        tmp_path,
        (
            f'if [ "$1 $2" = "{step}" ]; then\n'
            '  echo "Error response from daemon: context deadline exceeded" >&2; exit 1\nfi'
        ),
    )
    result = run_cli(
        "drift-check",
        "--json",
        *std_lab.args(tmp_path),
        "--docker-command",
        broken,
        env={"DOCKER_HOST": std_lab.lab.engines["alpha"].socket},
    )
    assert result.code == 8, result.out + result.err
    doc = result.json()
    assert doc["modules"][0]["status"] == "error"
    (h,) = doc["hosts"]
    assert h["status"] == "error" and h["containers"] is None
    assert (
        h["reason"]
        == f"docker {step} failed: Error response from daemon: context deadline exceeded"
    )
    # The same host without the fault is read, so the fault alone made the difference.
    fine = run_cli(
        "drift-check",
        "--json",
        *std_lab.args(tmp_path),
        env={"DOCKER_HOST": std_lab.lab.engines["alpha"].socket},
    )
    assert fine.code == 0, fine.out


def test_stderr_flood_is_drained_and_ignored(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    module_on(tmp_path, std_lab, "alpha")
    flood = docker_wrapper(tmp_path, "head -c 20000000 /dev/zero | tr '\\0' 'w' >&2")
    result = run_cli(
        "drift-check",
        "--json",
        *std_lab.args(tmp_path),
        "--docker-command",
        flood,
    )
    assert result.code == 0, result.out[-500:]


def test_oversized_output_is_a_host_error(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    module_on(tmp_path, std_lab, "alpha")
    huge = docker_wrapper(
        tmp_path, ('if [ "$1" = "info" ]; then head -c 70000000 /dev/zero | tr "\\0" "x"; fi')
    )
    result = run_cli(
        "drift-check",
        "--json",
        *std_lab.args(tmp_path),
        "--docker-command",
        huge,
    )
    (h,) = result.json()["hosts"]
    assert h["status"] == "error" and "exceeds 64 MiB" in h["reason"]


def test_agent_keys_authenticate(std_lab: StandardLab, run_cli: Runner, tmp_path: Path) -> None:
    module_on(tmp_path, std_lab, "viaagent")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = {"SSH_AUTH_SOCK": str(sock), "HOME": str(tmp_path)}  # no default key files
        subprocess.run(
            ["ssh-add", "-q", str(std_lab.lab.client_key)],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        alpha = std_lab.lab.hosts["alpha"]
        config = tmp_path / "config"
        config.write_text(
            f"Host viaagent\n  HostName 127.0.0.1\n  Port {alpha.port}\n"
            f"  User root\n  UserKnownHostsFile {std_lab.lab.known_hosts}\n"
        )
        result = run_cli(
            "drift-check", "--root", str(tmp_path), "--ssh-config", str(config), env=env
        )
        assert result.code == 0, result.out
        without = run_cli(
            "drift-check",
            "--json",
            "--root",
            str(tmp_path),
            "--ssh-config",
            str(config),
            env={"SSH_AUTH_SOCK": "", "HOME": str(tmp_path)},
        )
        assert without.json()["hosts"][0]["status"] == "auth-failed"
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_target_reachable_only_through_the_bastion(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    """Bastion and target live in their own network namespace; only a relay to the bastion's
    port is reachable from here, so the target can only be reached by jumping."""
    lab = std_lab.lab
    ns = lab.create_netns()
    bastion = lab.start_sshd(f"bastion-{uuid.uuid4().hex[:5]}", None, netns=ns, known=False)
    target = lab.start_sshd(
        f"target-{uuid.uuid4().hex[:5]}", lab.engines["alpha"], netns=ns, known=False
    )
    front = _free_port()
    lab.start_relay([(f"127.0.0.1:{front}", f"127.0.0.1:{bastion.port}")], netns=ns, name="bastion")
    _wait_open(front)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", target.port), timeout=2).close()
    known = tmp_path / "known_hosts"
    known.write_text(
        f"[127.0.0.1]:{front} {bastion.host_key_pub}\n"
        f"[127.0.0.1]:{target.port} {target.host_key_pub}\n"
    )
    module_on(tmp_path, std_lab, "inner")
    config = tmp_path / "config"
    config.write_text(
        f"Host jump\n  HostName 127.0.0.1\n  Port {front}\n"
        f"Host inner\n  HostName 127.0.0.1\n  Port {target.port}\n  ProxyJump jump\n"
        f"Host *\n  User root\n  IdentityFile {lab.client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known}\n"
    )
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(tmp_path),
        "--ssh-config",
        str(config),
        "--connect-timeout",
        "5",
    )
    assert result.code == 0, result.out
    assert (bastion.connections(), target.connections()) == (1, 1)
    assert (bastion.commands(), target.commands()) == (0, 1)
    # Without the jump the target is out of reach.
    direct = tmp_path / "direct"
    direct.write_text(config.read_text().replace("  ProxyJump jump\n", ""))
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(tmp_path),
        "--ssh-config",
        str(direct),
        "--connect-timeout",
        "2",
    )
    assert result.json()["hosts"][0]["status"] == "unreachable"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_open(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} never opened")
