"""README promises checked through the real command line, with no lab: local hosts answered by
a docker stand-in (a real executable), a refused loopback port for a dead SSH host, and stores
built through the library for history.

Each test names the README sentence it holds to.
"""

from __future__ import annotations

import os
import pty
import resource
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from platformctl.clock import from_iso
from platformctl.clock import to_iso as iso
from platformctl.collector.model import Collection, Container, HostResult, HostState, HostStatus
from platformctl.snapshots.store import Store
from tests.conftest import Runner, write_compose, write_module

# An engine with no containers, answering the remote script's first two calls as docker does.
EMPTY_ENGINE = """\
case "$1 $2" in
  "info --format") echo '{"version":"24.0.7","driver":"overlay2"}' ;;
  "container ls") ;;
  *) echo "unexpected: $*" >&2; exit 64 ;;
esac
"""
BROKEN_ENGINE = 'echo "Cannot connect to the Docker daemon at unix:///nowhere" >&2; exit 1\n'


def stand_in(folder: Path, body: str, name: str = "docker") -> str:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)
    return str(path)


def local_module(root: Path, name: str = "web", host: str = "localhost") -> Path:
    write_module(
        root,
        name,
        {"host": host, "orchestrator": "docker", "container": name, "image_observed": "nginx:1"},
    )
    return root


@pytest.fixture
def refused_config(tmp_path: Path) -> Path:
    """An ssh config whose alias ``dead`` points at a loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host dead\n  HostName 127.0.0.1\n  Port {port}\n  User nobody\n")
    return config


# --- "Colour only on a terminal; NO_COLOR and --no-color turn it off." ---


def on_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """Run platformctl with stdout on a pseudo-terminal; return what it printed there."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "platformctl", *args],
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=30)
    os.close(controller)
    return seen


@pytest.fixture
def terminal_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PLATFORMCTL_DB"] = str(tmp_path / "store.db")
    return env


def test_colour_on_a_terminal_and_never_with_no_color_or_the_flag(
    tmp_path: Path, terminal_env: dict[str, str], run_cli: Runner
) -> None:
    write_module(tmp_path, "dns", {"host": "edge", "orchestrator": "external"})
    args = ["drift-check", "--root", str(tmp_path)]
    assert b"\x1b[" in on_terminal(args, terminal_env)
    plain = on_terminal(args, {**terminal_env, "NO_COLOR": "1"})
    assert b"SKIPPED" in plain and b"\x1b[" not in plain
    flagged = on_terminal([*args, "--no-color"], terminal_env)
    assert b"SKIPPED" in flagged and b"\x1b[" not in flagged
    piped = run_cli(*args)
    assert "SKIPPED" in piped.out and "\x1b[" not in piped.out


# --- "--jobs N: 64 hosts at once"; "localhost or local = this machine, no SSH" ---

# Each host's `docker info` waits at a barrier until the other host's has arrived: only a run
# that really collects both at once gets past it before the wait runs out.
BARRIER = """\
if [ "$1" = info ]; then
  touch "$BARRIER/$$"
  n=0
  while [ "$(ls "$BARRIER" | wc -l)" -lt 2 ]; do
    n=$((n + 1))
    if [ "$n" -gt "$((BARRIER_WAIT * 10))" ]; then echo "alone at the barrier" >&2; exit 1; fi
    sleep 0.1
  done
fi
"""


@pytest.mark.parametrize(("jobs", "wait", "met"), [("2", "60", True), ("1", "2", False)])
def test_jobs_collects_hosts_at_the_same_time_and_local_is_this_machine(
    tmp_path: Path, refused_config: Path, run_cli: Runner, jobs: str, wait: str, met: bool
) -> None:
    root = local_module(tmp_path / "p", "a", host="localhost")
    local_module(root, "b", host="local")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    docker = stand_in(tmp_path, BARRIER + EMPTY_ENGINE)
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--ssh-config",
        str(refused_config),  # no alias for either: they never go through SSH
        "--docker-command",
        docker,
        "--jobs",
        jobs,
        env={"BARRIER": str(barrier), "BARRIER_WAIT": wait},
    )
    hosts = {h["host"]: h for h in result.json()["hosts"]}
    assert set(hosts) == {"local", "localhost"}
    if met:
        assert result.code == 2, result.out  # both read: both modules missing
        assert {h["status"] for h in hosts.values()} == {"ok"}
    else:  # one at a time: the first waits alone and gives up
        assert sorted(h["status"] for h in hosts.values()) == ["error", "ok"]
        assert any("alone at the barrier" in (h["reason"] or "") for h in hosts.values())


# --- "--docker-command CMD / PLATFORMCTL_DOCKER_COMMAND" ---


def test_the_docker_command_comes_from_the_environment(tmp_path: Path, run_cli: Runner) -> None:
    root = local_module(tmp_path / "p")
    docker = stand_in(tmp_path, EMPTY_ENGINE)
    result = run_cli(
        "drift-check", "--json", "--root", str(root), env={"PLATFORMCTL_DOCKER_COMMAND": docker}
    )
    (host,) = result.json()["hosts"]
    assert host["status"] == "ok" and host["docker_version"] == "24.0.7"
    # The option wins over the environment.
    broken = stand_in(tmp_path, BROKEN_ENGINE, "broken-docker")
    overridden = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--docker-command",
        broken,
        env={"PLATFORMCTL_DOCKER_COMMAND": docker},
    )
    assert overridden.json()["hosts"][0]["status"] == "error"


# --- "--db PATH / PLATFORMCTL_DB: $XDG_STATE_HOME/platformctl/snapshots.db (~/.local/state/…)"


@pytest.mark.parametrize("xdg", [True, False])
def test_the_default_store_is_under_xdg_state_home(
    tmp_path: Path, run_cli: Runner, xdg: bool
) -> None:
    root = local_module(tmp_path / "p")
    home = tmp_path / "home"
    env: dict[str, str | None] = {
        "PLATFORMCTL_DB": None,
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "state") if xdg else None,
        "PLATFORMCTL_DOCKER_COMMAND": stand_in(tmp_path, EMPTY_ENGINE),
    }
    result = run_cli("drift-check", "--json", "--root", str(root), env=env)
    assert result.code == 2, result.err
    expected = (tmp_path / "state" if xdg else home / ".local" / "state") / "platformctl"
    store = expected / "snapshots.db"
    assert store.is_file() and store.stat().st_mode & 0o777 == 0o600
    listed = run_cli("snapshots", "list", "--json", env=env)
    assert listed.code == 0, listed.err
    assert result.json()["snapshot"]["id"] in {s["id"] for s in listed.json()["snapshots"]}


# --- "The compose image is interpolated from the stack's .env only" ---


def test_the_shells_environment_never_fills_a_compose_variable(
    tmp_path: Path, run_cli: Runner
) -> None:
    root = tmp_path / "p"
    write_compose(root, "apps", {"web": {"image": "nginx:${WEB_TAG}"}}, env="OTHER=1\n")
    write_module(
        root,
        "web",
        {
            "host": "localhost",
            "orchestrator": "docker-compose",
            "compose_service": "web",
            "image_observed": "nginx:1.25",
        },
    )
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--docker-command",
        stand_in(tmp_path, EMPTY_ENGINE),
        env={"WEB_TAG": "1.25"},
    )
    (module,) = result.json()["modules"]
    assert module["compose"]["resolved"] is False
    assert "WEB_TAG" in module["compose"]["reason"]
    checks = {c["check"]: c["result"] for c in module["checks"]}
    assert checks["manifest-compose"] == "skipped"


# --- "snapshot.id is null when no host was in scope" ---


def test_snapshot_id_is_null_when_no_host_is_in_scope(tmp_path: Path, run_cli: Runner) -> None:
    write_module(tmp_path, "dns", {"host": "edge", "orchestrator": "external"})
    result = run_cli("drift-check", "--json", "--root", str(tmp_path))
    doc = result.json()
    assert result.code == 0
    assert doc["snapshot"]["id"] is None and doc["hosts"] == []


# --- "containers is null when the host could not be read"; exit 8 for a docker-failed host ---


def test_a_host_whose_docker_failed_has_null_containers_and_exits_8_not_5(
    tmp_path: Path, run_cli: Runner
) -> None:
    root = local_module(tmp_path / "p")
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--docker-command",
        stand_in(tmp_path, BROKEN_ENGINE),
    )
    assert result.code == 8, result.out
    (host,) = result.json()["hosts"]
    assert host["status"] == "error" and host["containers"] is None
    assert "Docker daemon is not running" in host["reason"]
    read = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--docker-command",
        stand_in(tmp_path, EMPTY_ENGINE, "empty"),
    )
    assert read.json()["hosts"][0]["containers"] == 0


# --- "collect exits 0 when every host was read, 8 when some failed, 5 when none answered" ---


def test_collect_exit_codes(tmp_path: Path, refused_config: Path, run_cli: Runner) -> None:
    empty = stand_in(tmp_path, EMPTY_ENGINE)
    broken = stand_in(tmp_path, BROKEN_ENGINE, "broken")
    ssh = ["--ssh-config", str(refused_config), "--connect-timeout", "5"]

    def collect(*hosts: str, docker: str = empty) -> tuple[int, dict[str, str]]:
        args = [a for h in hosts for a in ("--host", h)]
        result = run_cli("collect", "--json", *args, *ssh, "--docker-command", docker)
        doc = result.json()
        assert doc["exit_code"] == result.code
        return result.code, {h["host"]: h["status"] for h in doc["hosts"]}

    assert collect("localhost") == (0, {"localhost": "ok"})
    assert collect("localhost", "dead") == (8, {"localhost": "ok", "dead": "unreachable"})
    assert collect("localhost", docker=broken) == (8, {"localhost": "error"})
    assert collect("dead") == (5, {"dead": "unreachable"})
    plain = run_cli("collect", "--host", "dead", *ssh)
    assert plain.code == 5 and "dead: unreachable: connection refused" in plain.err


# --- drift-history: "An interval that began before the window keeps its true from; only its
# duration is clipped" and prune: "no answer changes" ---

DAY = 86400


def container(tag: str) -> Container:
    return Container(
        id="c" * 64,
        name="web",
        created=None,
        started=None,
        status="running",
        running=True,
        config_image=f"nginx:{tag}",
        image_id="sha256:" + ("a" if tag == "1.25" else "b") * 64,
    )


@pytest.fixture
def history_store(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[int, str]]]:
    """A year of snapshots of host h1: web drifts from 150 to 100 days ago (seen again 130
    and 120 days ago, unchanged) and from 60 to 40 days ago; it is fine at 97, 95 and 5 days
    ago."""
    now = datetime.now(UTC).replace(microsecond=0)
    timeline = [(200, "1.25"), (150, "1.24"), (130, "1.24"), (120, "1.24"), (100, "1.25")]
    timeline += [(97, "1.25"), (95, "1.25"), (60, "1.24"), (40, "1.25"), (5, "1.25")]
    db = tmp_path / "history.db"
    store = Store.open(db)
    at: dict[int, str] = {}
    for days, tag in timeline:
        at[days] = iso(now - timedelta(days=days))
        state = HostState((container(tag),), ())
        moment = from_iso(at[days])
        store.save(Collection(moment, (HostResult("h1", HostStatus.OK, state=state),)), "test")
    store.db.conn.close()
    root = tmp_path / "p"
    write_module(
        root,
        "web",
        {
            "host": "h1",
            "orchestrator": "docker",
            "container": "web",
            "image_observed": "nginx:1.25",
        },
    )
    yield db, root, at


def history(run_cli: Runner, db: Path, root: Path, since: str) -> dict:
    result = run_cli(
        "drift-history", "--json", "--since", since, "--root", str(root), "--db", str(db)
    )
    assert result.code == 0, result.err
    return result.json()


def test_a_clipped_interval_keeps_its_true_start(
    history_store: tuple[Path, Path, dict[int, str]], run_cli: Runner
) -> None:
    db, root, at = history_store
    (web,) = history(run_cli, db, root, "130d")["modules"]
    assert web["intervals"] == [
        {"status": "drift", "from": at[150], "to": at[100], "accepted": False},
        {"status": "drift", "from": at[60], "to": at[40], "accepted": False},
    ]
    # 30 of the first interval's 50 days fall in the window, plus all 20 of the second; the
    # command reads the clock a little after the fixture did, shaving at most a minute off.
    assert 50 * DAY - 60 <= web["drift_seconds"] <= 50 * DAY
    whole = history(run_cli, db, root, "365d")["modules"][0]
    assert whole["drift_seconds"] == 70 * DAY


def test_prune_changes_no_drift_history_answer(
    history_store: tuple[Path, Path, dict[int, str]], run_cli: Runner
) -> None:
    db, root, _ = history_store
    before = {since: history(run_cli, db, root, since)["modules"] for since in ("365d", "130d")}
    pruned = run_cli("snapshots", "prune", "--older-than", "90d", "--json", "--db", str(db))
    assert pruned.code == 0, pruned.err
    # 130 and 97 days ago changed nothing; 120 and 95 did not either, but each is where the
    # state before a change was last seen, which history needs (ChangePoint.before).
    assert pruned.json()["removed_snapshots"] == 2
    after = {since: history(run_cli, db, root, since)["modules"] for since in ("365d", "130d")}
    assert after["365d"] == before["365d"]
    assert after["130d"][0]["intervals"] == before["130d"][0]["intervals"]
    assert abs(after["130d"][0]["drift_seconds"] - before["130d"][0]["drift_seconds"]) <= 60


# --- "--jobs ... is capped so that a run never runs out of file descriptors" ---
def test_jobs_beyond_the_open_file_limit_wait_rather_than_fail(
    tmp_path: Path, run_cli: Runner
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)  # accepts TCP, never says a word: each host holds its socket 0.5 s
    port = silent.getsockname()[1]
    root = tmp_path / "p"
    aliases = [f"quiet{i:02d}" for i in range(40)]
    for alias in aliases:
        local_module(root, alias, host=alias)
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(f"Host {a}\n  HostName 127.0.0.1\n  Port {port}\n" for a in aliases)
        + f"Host *\n  UserKnownHostsFile {tmp_path / 'known_hosts'}\n"
    )
    limit = 48  # room for (48 - 32) // 4 = 4 hosts at once; 40 at once would run out
    try:
        result = run_cli(
            "drift-check", "--json", "--root", str(root), "--ssh-config", str(config),
            "--jobs", "40", "--connect-timeout", "0.5",
            preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
        )  # fmt: skip
    finally:
        silent.close()
    hosts = result.json()["hosts"]
    assert result.code == 5, result.err
    assert len(hosts) == 40
    assert {h["status"] for h in hosts} == {"unreachable"}, {h["reason"] for h in hosts}
    assert all("did not complete the SSH handshake" in h["reason"] for h in hosts)
