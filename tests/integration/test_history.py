"""Replay, drift age and history against real hosts."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Runner, StandardLab, write_module


@pytest.fixture
def platform(std_lab: StandardLab, tmp_path: Path) -> tuple[Path, str, str]:
    """One drifting container on alpha, one matching on beta, one module on a dead host."""
    lab, images = std_lab.lab, std_lab.images
    tag = uuid.uuid4().hex[:6]
    drifting, fine = f"hist-{tag}", f"fine-{tag}"
    lab.run_container(lab.engines["alpha"], drifting, images.web_10)
    lab.run_container(lab.engines["beta"], fine, images.web_11)
    root = tmp_path / "platform"
    write_module(
        root,
        "drifter",
        {
            "host": "alpha",
            "orchestrator": "docker",
            "container": drifting,
            "image_observed": std_lab.ref(images.web_11),
        },
    )
    write_module(
        root,
        "fine",
        {
            "host": "beta",
            "orchestrator": "docker",
            "container": fine,
            "image_observed": std_lab.ref(images.web_11),
        },
    )
    write_module(
        root,
        "far",
        {
            "host": "refused",
            "orchestrator": "docker",
            "container": "x",
            "image_observed": std_lab.ref(images.web_11),
        },
    )
    write_module(root, "dns", {"host": "edge", "orchestrator": "external"})
    return root, drifting, fine


def live(
    run_cli: Runner, root: Path, std: StandardLab, *extra: str, config: Path | None = None
) -> dict:
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--ssh-config",
        str(config or std.lab.ssh_config),
        "--connect-timeout",
        "3",
        *extra,
    )
    doc = result.json()
    assert doc["exit_code"] == result.code
    return doc


def verdicts(doc: dict) -> dict[str, tuple[str, str]]:
    return {m["module"]: (m["status"], m["reason"]) for m in doc["modules"]}


def test_replay_with_every_host_down_gives_the_recorded_verdicts(
    std_lab: StandardLab, platform: tuple[Path, str, str], run_cli: Runner, tmp_path: Path
) -> None:
    root, _, _ = platform
    recorded = live(run_cli, root, std_lab)
    assert recorded["exit_code"] == 8
    empty = tmp_path / "empty_ssh_config"
    empty.write_text("")
    for ref in (str(recorded["snapshot"]["id"]), "latest"):
        result = run_cli(
            "drift-check",
            "--json",
            "--snapshot",
            ref,
            "--root",
            str(root),
            "--ssh-config",
            str(empty),
            "--connect-timeout",
            "0.1",
        )
        replay = result.json()
        assert replay["snapshot"]["replay"] is True
        assert replay["snapshot"]["id"] == recorded["snapshot"]["id"]
        assert result.code == recorded["exit_code"]
        assert verdicts(replay) == verdicts(recorded)
        assert [m["live"] for m in replay["modules"]] == [m["live"] for m in recorded["modules"]]


def test_replay_of_a_snapshot_without_the_host_is_not_collected(
    std_lab: StandardLab, platform: tuple[Path, str, str], run_cli: Runner
) -> None:
    root, _, _ = platform
    only_beta = live(run_cli, root, std_lab, "fine")
    assert only_beta["exit_code"] == 0
    result = run_cli(
        "drift-check", "--json", "--snapshot", str(only_beta["snapshot"]["id"]), "--root", str(root)
    )
    doc = result.json()
    statuses = {m["module"]: m["status"] for m in doc["modules"]}
    assert statuses == {
        "drifter": "not-collected",
        "fine": "ok",
        "far": "not-collected",
        "dns": "skipped",
    }
    assert result.code == 8


def test_drift_since_stays_at_the_first_drifting_run_and_history_closes_on_fix(
    std_lab: StandardLab, platform: tuple[Path, str, str], run_cli: Runner, tmp_path: Path
) -> None:
    root, drifting, _ = platform
    lab = std_lab.lab
    # A config in which alpha refuses: runs that cannot collect alpha neither extend nor break.
    down = tmp_path / "alpha_down"
    down.write_text(
        lab.ssh_config.read_text().replace(
            "Host alpha\n  HostName 127.0.0.1", "Host alpha\n  HostName 127.0.0.2"
        )
    )

    runs = []
    for i in range(3):
        doc = live(run_cli, root, std_lab, "drifter")
        runs.append(doc)
        assert doc["modules"][0]["status"] == "drift"
        assert doc["modules"][0]["drift_since"] == runs[0]["snapshot"]["taken_at"]
        if i == 1:
            gap = live(run_cli, root, std_lab, "drifter", config=down)
            assert gap["modules"][0]["status"] == "unreachable"
            assert gap["modules"][0]["drift_since"] is None
        time.sleep(1.1)  # distinct taken_at seconds, so "the first" is observable
    assert runs[0]["snapshot"]["taken_at"] != runs[2]["snapshot"]["taken_at"]
    table = run_cli(
        "drift-check", "drifter", "--root", str(root), "--ssh-config", str(lab.ssh_config)
    ).out
    row = next(line for line in table.splitlines() if line.startswith("drifter"))
    assert re.search(r"\s(\d+s|1m)$", row.rstrip()), row  # the SINCE column shows the age

    alpha = lab.engines["alpha"]
    alpha.docker("rm", "-f", drifting)
    lab.run_container(alpha, drifting, std_lab.images.web_11)
    fixed = live(run_cli, root, std_lab, "drifter")
    assert fixed["modules"][0]["status"] == "ok" and fixed["modules"][0]["drift_since"] is None

    history = run_cli("drift-history", "drifter", "--json", "--root", str(root)).json()
    assert history["schema"] == "platformctl.drift-history/v1"
    (module,) = history["modules"]
    assert module["status"] == "ok"
    assert module["intervals"] == [
        {
            "status": "drift",
            "from": runs[0]["snapshot"]["taken_at"],
            "to": fixed["snapshot"]["taken_at"],
            "accepted": False,
        }
    ]
    assert module["drift_seconds"] >= 3
    text = run_cli("drift-history", "--root", str(root)).out
    assert "drift: " + runs[0]["snapshot"]["taken_at"] in text


def test_collect_only_prints_the_snapshot_id(
    std_lab: StandardLab, platform: tuple[Path, str, str], run_cli: Runner
) -> None:
    root, _, _ = platform
    result = run_cli(
        "collect", "--host", "alpha", "--host", "beta", "--ssh-config", str(std_lab.lab.ssh_config)
    )
    assert result.code == 0, result.err
    snapshot_id = int(result.out.strip())
    shown = run_cli("snapshots", "show", str(snapshot_id), "--json").json()
    assert [h["host"] for h in shown["hosts"]] == ["alpha", "beta"]
    every = run_cli(
        "collect",
        "--json",
        *std_lab.args(root),
        "--connect-timeout",
        "2",
    )
    assert every.code == 8
    assert [h["host"] for h in every.json()["hosts"]] == ["alpha", "beta", "refused"]


def test_two_runs_on_one_store_at_once_both_finish(
    std_lab: StandardLab, platform: tuple[Path, str, str], tmp_path: Path
) -> None:
    root, _, _ = platform
    db = tmp_path / "shared.db"
    args = [
        sys.executable,
        "-m",
        "platformctl",
        "drift-check",
        "--json",
        *std_lab.args(root),
        "--db",
        str(db),
        "--connect-timeout",
        "3",
    ]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [8, 8, 8], [o[1] for o in outs]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = sorted(r[0] for r in conn.execute("SELECT id FROM snapshots"))
    assert len(ids) == 3
    counts = conn.execute("SELECT snapshot_id, count(*) FROM snapshot_hosts GROUP BY 1").fetchall()
    assert sorted(c for _, c in counts) == [3, 3, 3]
