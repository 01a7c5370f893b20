"""drift-check end to end against the real lab: sshd, dockerd, registry, compose."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Runner, StandardLab, write_compose, write_module

CANARY = "canary-" + uuid.uuid4().hex


@dataclass
class Scenario:
    """A platform repository (outside the project) and the lab it describes."""

    root: Path
    std: StandardLab

    def args(self, *extra: str) -> list[str]:
        return [
            "--root",
            str(self.root),
            "--ssh-config",
            str(self.std.lab.ssh_config),
            "--connect-timeout",
            "3",
            *extra,
        ]


def tree_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def scenario(std_lab: StandardLab, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """Every status of SPEC §5.1 on one repository, across alpha, beta and dead hosts."""
    lab, images = std_lab.lab, std_lab.images
    alpha, beta = lab.engines["alpha"], lab.engines["beta"]
    root = tmp_path_factory.mktemp("platform")
    reg = lab.registry
    secret_env = {"SECRET": CANARY}

    stack = write_compose(
        root,
        "scn-apps",
        {
            "honcho-api": {
                "image": f"{reg}/plastic-labs/honcho:${{HONCHO_TAG}}",
                "network_mode": "none",
                "environment": secret_env,
                "labels": {"secret.token": CANARY},
            },
            "web": {
                "image": f"{reg}/org/web:1.0",
                "network_mode": "none",
                "container_name": "custom-web",
            },
            "worker": {"image": f"{reg}/org/web:1.1", "network_mode": "none"},
        },
        env="HONCHO_TAG=3.0.6\n",
    )
    # Deployed with 3.0.3 although .env says 3.0.6: the seed's drifting module.
    lab.compose(alpha, stack.parent, "scn-apps", "up", "-d")
    lab.compose(
        alpha, stack.parent, "scn-apps", "up", "-d", "honcho-api", env={"HONCHO_TAG": "3.0.3"}
    )
    lab.compose(alpha, stack.parent, "scn-apps", "run", "-d", "honcho-api")
    # A leftover replica of worker, still on the old image.
    lab.run_container(
        alpha,
        "scn-apps_worker_2",
        images.web_10,
        labels={
            "com.docker.compose.project": "scn-apps",
            "com.docker.compose.service": "worker",
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.container-number": "2",
        },
    )
    # Canaries wherever docker inspect carries operator data: Env, labels, Cmd, Entrypoint
    # and a mount's source. The entrypoint is a script inside the canary-named mount.
    mount = root.parent / f"mnt-{CANARY}"
    mount.mkdir()
    (mount / "run").write_text("#!/bin/sh\nexec sleep infinity\n")
    (mount / "run").chmod(0o755)
    lab.run_container(
        beta,
        "scn-cache",
        images.web_10,
        env=secret_env,
        labels={"secret.token": CANARY},
        volumes=(f"{mount}:/{CANARY}:ro",),
        entrypoint=f"/{CANARY}/run",
        command=(f"--token={CANARY}",),
    )
    lab.run_container(beta, "scn-batch", images.web_10, running=False)
    lab.run_container(beta, "scn-napping", images.web_10, paused=True)
    lab.run_container(alpha, "scn-local", images.local_dev)

    d = images.digests
    compose_rt = {"host": "alpha", "orchestrator": "docker-compose"}
    write_module(
        root,
        "honcho-api",
        {
            **compose_rt,
            "compose_service": "honcho-api",
            "image_observed": std_lab.ref(images.honcho_306),
        },
    )
    write_module(
        root,
        "web",
        {
            **compose_rt,
            "compose_service": "web",
            "image_observed": {
                "image": images.web_10,
                "digest": d[images.web_10],
                "observed_at": "2026-11-20",
            },
        },
    )
    write_module(
        root,
        "worker",
        {**compose_rt, "compose_service": "worker", "image_observed": std_lab.ref(images.web_11)},
    )
    write_module(
        root,
        "cache",
        {
            "host": "beta",
            "orchestrator": "docker",
            "container": "scn-cache",
            "image_observed": std_lab.ref(images.web_10),
        },
    )
    write_module(
        root,
        "gone",
        {
            "host": "beta",
            "orchestrator": "docker",
            "container": "scn-gone",
            "image_observed": std_lab.ref(images.web_10),
        },
    )
    write_module(
        root,
        "batch",
        {
            "host": "beta",
            "orchestrator": "docker",
            "container": "scn-batch",
            "image_observed": std_lab.ref(images.web_10),
        },
    )
    write_module(
        root,
        "napping",
        {
            "host": "beta",
            "orchestrator": "docker",
            "container": "scn-napping",
            "image_observed": std_lab.ref(images.web_10),
        },
    )
    write_module(
        root,
        "localapp",
        {
            "host": "alpha",
            "orchestrator": "docker",
            "container": "scn-local",
            "image_observed": f"{images.local_dev}@sha256:{'5' * 64}",
        },
    )
    write_module(
        root,
        "backup",
        {
            "host": "refused",
            "orchestrator": "docker",
            "container": "backup",
            "image_observed": std_lab.ref(images.web_10),
        },
    )
    write_module(root, "dns", {"host": "edge", "orchestrator": "external"})
    broken = root / "modules" / "broken" / "module.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("spec:\n  runtime:\n    host: alpha\n    orchestrator: [docker\n")
    return Scenario(root, std_lab)


EXPECTED = {
    "honcho-api": "drift",
    "web": "ok",
    "worker": "drift",
    "cache": "ok",
    "gone": "missing",
    "batch": "stopped",
    "napping": "stopped",
    "localapp": "unverifiable",
    "backup": "unreachable",
    "dns": "skipped",
    "broken": "invalid",
}


def test_every_module_gets_its_status_and_the_repo_exits_partial(
    scenario: Scenario, run_cli: Runner
) -> None:
    result = run_cli("drift-check", "--json", *scenario.args())
    assert result.code == 8, result.err
    doc = result.json()
    assert {m["module"]: m["status"] for m in doc["modules"]} == EXPECTED
    assert doc["exit_code"] == 8
    assert doc["snapshot"]["status"] == "partial" and not doc["snapshot"]["replay"]
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["alpha"]["status"] == "ok" and hosts["alpha"]["storage_driver"] == "vfs"
    assert hosts["refused"]["status"] == "unreachable"
    assert "refused" in hosts["refused"]["reason"]


@pytest.mark.parametrize(
    ("modules", "code"),
    [
        (["web"], 0),
        (["web", "cache", "dns"], 0),
        (["dns"], 0),
        (["web", "honcho-api"], 2),
        (["gone"], 2),
        (["batch"], 2),
        (["napping"], 2),
        (["napping", "web", "localapp"], 8),
        (["worker"], 2),
        (["backup"], 5),
        (["web", "localapp"], 8),
        (["broken"], 8),
        (["web", "backup"], 8),
    ],
)
def test_exit_codes_for_subsets(
    scenario: Scenario, run_cli: Runner, modules: list[str], code: int
) -> None:
    result = run_cli("drift-check", *modules, *scenario.args())
    assert result.code == code, result.out + result.err
    for name in modules:
        assert name in result.out


def test_seed_case_shows_tag_and_digest_before_and_after(
    scenario: Scenario, run_cli: Runner
) -> None:
    images = scenario.std.images
    d306, d303 = images.digests[images.honcho_306], images.digests[images.honcho_303]
    doc = run_cli("drift-check", "honcho-api", "--json", *scenario.args()).json()
    (module,) = doc["modules"]
    manifest_live = [c for c in module["checks"] if c["check"] == "manifest-live"]
    assert manifest_live == [
        {
            "check": "manifest-live",
            "result": "drift",
            "container": "scn-apps_honcho-api_1",
            "changes": {"tag": ["3.0.6", "3.0.3"], "digest": [d306, d303]},
            "note": None,
        }
    ]
    # The compose file says 3.0.6 too, so compose-live drifts and manifest-compose agrees.
    results = {c["check"]: c["result"] for c in module["checks"]}
    assert results == {"manifest-live": "drift", "compose-live": "drift", "manifest-compose": "ok"}
    # The one-off `compose run` container is not counted as the service.
    assert [c["container"] for c in module["live"]] == ["scn-apps_honcho-api_1"]

    table = run_cli("drift-check", "honcho-api", *scenario.args()).out
    row = next(line for line in table.splitlines() if line.startswith("honcho-api"))
    assert "DRIFT" in row
    assert f"honcho:3.0.6@{d306[7:19]}" in row and f"honcho:3.0.3@{d303[7:19]}" in row
    assert "tag 3.0.6 → 3.0.3" in table


def test_leftover_replica_names_the_stale_container(scenario: Scenario, run_cli: Runner) -> None:
    doc = run_cli("drift-check", "worker", "--json", *scenario.args()).json()
    (module,) = doc["modules"]
    assert module["status"] == "drift"
    assert "scn-apps_worker_2" in module["reason"]
    assert sorted(c["container"] for c in module["live"]) == [
        "scn-apps_worker_1",
        "scn-apps_worker_2",
    ]


def test_one_connection_and_one_command_per_host(scenario: Scenario, run_cli: Runner) -> None:
    alpha, beta = scenario.std.lab.hosts["alpha"], scenario.std.lab.hosts["beta"]
    before = (alpha.connections(), alpha.commands(), beta.connections(), beta.commands())
    result = run_cli("drift-check", *scenario.args())
    assert result.code == 8, result.out + result.err
    after = (alpha.connections(), alpha.commands(), beta.connections(), beta.commands())
    # alpha carries five modules and beta four: still one login and one command each.
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]
    # A run scoped to alpha's modules does not touch beta at all.
    run_cli("drift-check", "web", "honcho-api", *scenario.args())
    assert beta.connections() == after[2]


def test_secrets_in_env_labels_cmd_entrypoint_and_mounts_never_reach_store_json_or_table(
    scenario: Scenario, run_cli: Runner, tmp_path: Path
) -> None:
    db = tmp_path / "secrets.db"
    as_json = run_cli("drift-check", "--json", "--db", str(db), *scenario.args())
    table = run_cli("drift-check", "--db", str(db), *scenario.args())
    assert as_json.json()["modules"]  # the run really happened
    for text in (as_json.out, as_json.err, table.out, table.err):
        assert CANARY not in text
    for path in tmp_path.iterdir():
        assert CANARY.encode() not in path.read_bytes()
    # The canary is really there on the host, in every field, so the test can fail.
    (inspect,) = json.loads(
        scenario.std.lab.engines["beta"].docker("container", "inspect", "scn-cache")
    )
    config = inspect["Config"]
    assert f"SECRET={CANARY}" in config["Env"]
    assert config["Labels"]["secret.token"] == CANARY
    assert config["Cmd"] == [f"--token={CANARY}"]
    assert config["Entrypoint"] == [f"/{CANARY}/run"]
    assert CANARY in inspect["Mounts"][0]["Source"]


# The fields the store keeps, and nothing else (README: "The store holds, per host ...").
STORED_CONTAINER = {
    "id",
    "name",
    "created",
    "started",
    "status",
    "running",
    "config_image",
    "image_id",
    "project",
    "service",
    "oneoff",
    "number",
}
SHOWN_CONTAINER = {
    "id",
    "name",
    "created",
    "started",
    "state",
    "running",
    "image",
    "image_id",
    "compose_project",
    "compose_service",
    "compose_oneoff",
    "compose_number",
}
STORED_IMAGE = {"id", "repo_tags", "repo_digests"}


def test_stored_containers_hold_exactly_the_whitelisted_keys(
    scenario: Scenario, run_cli: Runner, tmp_path: Path
) -> None:
    db = tmp_path / "whitelist.db"
    assert run_cli("drift-check", "--db", str(db), *scenario.args()).code == 8
    shown = run_cli("snapshots", "show", "latest", "--json", "--db", str(db))
    assert CANARY not in shown.out
    hosts = {h["host"]: h for h in shown.json()["hosts"]}
    assert hosts["refused"]["containers"] is None
    names = set()
    for host in ("alpha", "beta"):
        for c in hosts[host]["containers"]:
            assert set(c) == SHOWN_CONTAINER, sorted(set(c) ^ SHOWN_CONTAINER)
            names.add(c["name"])
        for image in hosts[host]["images"]:
            assert set(image) == STORED_IMAGE
    assert "scn-cache" in names  # the container carrying the canaries was recorded
    conn = sqlite3.connect(db)
    bodies = [json.loads(body) for (body,) in conn.execute("SELECT body FROM host_states")]
    conn.close()
    assert bodies
    for body in bodies:
        assert set(body) == {"containers", "images"}
        for c in body["containers"]:
            assert set(c) == STORED_CONTAINER, sorted(set(c) ^ STORED_CONTAINER)
        for image in body["images"]:
            assert set(image) == STORED_IMAGE
    for path in tmp_path.iterdir():
        assert CANARY.encode() not in path.read_bytes(), path


def test_a_paused_container_is_stopped_though_docker_says_running(
    scenario: Scenario, run_cli: Runner, tmp_path: Path
) -> None:
    db = tmp_path / "paused.db"
    result = run_cli("drift-check", "napping", "--json", "--db", str(db), *scenario.args())
    assert result.code == 2, result.out
    (module,) = result.json()["modules"]
    assert module["status"] == "stopped" and "paused" in module["reason"]
    assert [c["state"] for c in module["live"]] == ["paused"]
    # Docker's State.Running is true while paused: only State.Status tells.
    shown = run_cli("snapshots", "show", "latest", "--json", "--db", str(db)).json()
    (napping,) = [c for h in shown["hosts"] for c in h["containers"] if c["name"] == "scn-napping"]
    assert napping["running"] is True and napping["state"] == "paused"


def test_store_is_private_wal_and_holds_the_snapshot(
    scenario: Scenario, run_cli: Runner, tmp_path: Path
) -> None:
    db = tmp_path / "state" / "snap.db"
    result = run_cli("drift-check", "--json", "--db", str(db), *scenario.args())
    assert db.stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snap_id = result.json()["snapshot"]["id"]
    hosts = conn.execute(
        "SELECT count(*) FROM snapshot_hosts WHERE snapshot_id = ?", (snap_id,)
    ).fetchone()[0]
    assert hosts == 3  # alpha, beta, refused


def test_platform_tree_is_unchanged_by_a_run(scenario: Scenario, run_cli: Runner) -> None:
    before = tree_hash(scenario.root)
    run_cli("drift-check", *scenario.args())
    run_cli("drift-check", "--json", *scenario.args())
    assert tree_hash(scenario.root) == before


def test_shell_metacharacters_in_manifests_run_nothing_anywhere(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    root = tmp_path / "hostile"
    payloads = [
        f"x$(touch {marker})",
        f"x;touch {marker}",
        f"x`touch {marker}`",
        f"x' ; touch {marker} ; '",
        f'x"; touch {marker}',
    ]
    for i, payload in enumerate(payloads):
        write_module(
            root,
            f"svc{i}",
            {
                "host": "alpha",
                "orchestrator": "docker-compose",
                "compose_service": payload,
                "compose_project": payload,
                "image_observed": std_lab.ref(std_lab.images.web_10),
            },
        )
        write_module(
            root,
            f"ctr{i}",
            {
                "host": "alpha",
                "orchestrator": "docker",
                "container": payload,
                "image_observed": std_lab.ref(std_lab.images.web_10),
            },
        )
        write_module(
            root,
            f"host{i}",
            {
                "host": payload,
                "orchestrator": "docker",
                "container": "c",
                "image_observed": std_lab.ref(std_lab.images.web_10),
            },
        )
        write_module(
            root,
            f"img{i}",
            {
                "host": "localhost",
                "orchestrator": "docker",
                "container": "c",
                "image_observed": payload,
            },
        )
    result = run_cli(
        "drift-check",
        "--json",
        *std_lab.args(root),
        "--connect-timeout",
        "2",
        env={"DOCKER_HOST": std_lab.lab.engines["alpha"].socket},
    )
    assert result.code == 8, result.err
    statuses = {m["module"]: m["status"] for m in result.json()["modules"]}
    assert all(statuses[f"svc{i}"] == "missing" for i in range(len(payloads)))
    assert all(statuses[f"img{i}"] == "invalid" for i in range(len(payloads)))
    assert all(statuses[f"host{i}"] == "invalid" for i in range(len(payloads)))
    assert not marker.exists()


def test_local_hosts_run_without_ssh(std_lab: StandardLab, run_cli: Runner, tmp_path: Path) -> None:
    lab, images = std_lab.lab, std_lab.images
    name = f"local-{uuid.uuid4().hex[:8]}"
    lab.run_container(lab.engines["alpha"], name, images.web_11)
    write_module(
        tmp_path,
        "mod",
        {
            "host": "localhost",
            "orchestrator": "docker",
            "container": name,
            "image_observed": std_lab.ref(images.web_11),
        },
    )
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(tmp_path),
        env={"DOCKER_HOST": lab.engines["alpha"].socket},
    )
    assert result.code == 0, result.err
    assert result.json()["hosts"][0]["host"] == "localhost"


def test_dead_hosts_cost_only_their_timeout_and_spare_the_others(
    scenario: Scenario, run_cli: Runner, tmp_path: Path
) -> None:
    root = tmp_path / "p"
    ref = scenario.std.ref(scenario.std.images.web_10)
    for host in ("silent", "refused", "beta"):
        write_module(
            root,
            f"m-{host}",
            {
                "host": host,
                "orchestrator": "docker",
                "container": "scn-cache",
                "image_observed": ref,
            },
        )
    result = run_cli(
        "drift-check",
        "--json",
        *scenario.std.args(root),
        "--connect-timeout",
        "2",
        timeout=30,
    )
    doc = result.json()
    assert result.code == 8
    statuses = {m["module"]: m["status"] for m in doc["modules"]}
    assert statuses == {"m-silent": "unreachable", "m-refused": "unreachable", "m-beta": "ok"}
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert "did not complete the SSH handshake within 2s" in hosts["silent"]["reason"]
    # Bounded by the connect timeout plus a second, not by anything larger.
    assert hosts["silent"]["duration_ms"] < 3000


@pytest.mark.parametrize(
    ("docker_command", "reason"),
    [
        ("/nonexistent/docker", "docker is not installed"),
        ("setpriv --reuid=65534 --regid=65534 --clear-groups docker", "permission denied"),
        ("busybox echo", "docker info printed no JSON"),
    ],
)
def test_docker_failures_on_the_host_are_host_errors(
    scenario: Scenario, run_cli: Runner, docker_command: str, reason: str
) -> None:
    result = run_cli(
        "drift-check", "cache", "--json", *scenario.args(), "--docker-command", docker_command
    )
    assert result.code == 8, result.err
    doc = result.json()
    assert doc["modules"][0]["status"] == "error"
    (host,) = doc["hosts"]
    assert host["status"] == "error" and reason in host["reason"]


def test_json_is_stable_v1(scenario: Scenario, run_cli: Runner) -> None:
    doc = json.loads(run_cli("drift-check", "web", "--json", *scenario.args()).out)
    assert set(doc) >= {"schema", "exit_code", "snapshot", "summary", "hosts", "modules"}
    assert set(doc["summary"]) == set(EXPECTED.values()) | {"error", "not-collected", "accepted"}
    (module,) = doc["modules"]
    assert set(module) >= {
        "module",
        "host",
        "orchestrator",
        "compose_project",
        "compose_service",
        "status",
        "declared",
        "compose",
        "live",
        "checks",
        "drift_since",
        "reason",
    }
    assert module["compose_project"] == "scn-apps"
    assert module["live"][0]["container"] == "custom-web"


# Every command's output on the scenario, byte for byte apart from what varies between runs.
GOLDEN_COMMANDS = {
    "drift-check.json": ("drift-check", "--json"),
    "drift-check.txt": ("drift-check", "--no-color"),
    "drift-check-subset.json": ("drift-check", "honcho-api", "web", "--json"),
    "replay.json": ("drift-check", "--snapshot", "latest", "--json"),
    "replay.txt": ("drift-check", "--snapshot", "latest"),
    "collect.json": ("collect", "--json"),
    "collect.txt": ("collect",),
    "snapshots-list.json": ("snapshots", "list", "--json"),
    "snapshots-list.txt": ("snapshots", "list"),
    "snapshots-show.json": ("snapshots", "show", "latest", "--json"),
    "snapshots-show.txt": ("snapshots", "show", "latest"),
    "snapshots-diff.json": ("snapshots", "diff", "1", "latest", "--json"),
    "snapshots-diff.txt": ("snapshots", "diff", "1", "latest"),
    "drift-history.json": ("drift-history", "--json"),
    "drift-history.txt": ("drift-history",),
}


def test_every_output_is_as_it_was(scenario: Scenario, run_cli: Runner) -> None:
    from tests import golden

    keep = ("scn-", "custom-web")
    texts: dict[str, str] = {}
    for name, command in GOLDEN_COMMANDS.items():
        args = scenario.args()
        if command[0] in ("snapshots", "drift-history"):
            args = ["--root", str(scenario.root)]
        result = run_cli(*command, *args)
        out = result.out
        if name.endswith(".json") and command[0] in ("collect", "snapshots", "drift-check"):
            out = golden.stable_json(out, keep)
        texts[name] = f"exit {result.code}\n--- stdout\n{out}--- stderr\n{result.err}"
    shown = json.loads(run_cli("snapshots", "show", "latest", "--json").out)
    names = {c["name"] for h in shown["hosts"] for c in h["containers"] or []}
    for name, text in texts.items():
        if name.endswith(".txt"):
            text = golden.stable_table(text, keep, names if "snapshots" in name else set())
        golden.check(f"scenario-{name}", golden.normalize(text, scenario.root))


def test_a_container_started_by_image_id_is_judged_by_its_image(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    """`docker run <image ID>` records the ID, as typed, as Config.Image: the container is
    judged by the names its image carries, never as a repository called `sha256`. An image
    built on the host (no registry digest) is then unverifiable, not drift."""
    lab, images = std_lab.lab, std_lab.images
    alpha = lab.engines["alpha"]

    def image_id(ref: str) -> str:
        return alpha.docker("image", "inspect", "--format", "{{.Id}}", ref).strip()

    local_id, web_id = image_id(images.local_dev), image_id(images.web_10)
    root = tmp_path / "platform"
    on_alpha = {"host": "alpha", "orchestrator": "docker"}
    declared_local = f"{images.local_dev}@sha256:{'5' * 64}"
    write_module(
        root, "local", {**on_alpha, "container": "byid-local", "image_observed": declared_local}
    )
    write_module(
        root, "web", {**on_alpha, "container": "byid-web", "image_observed": images.web_10}
    )
    lab.run_container(alpha, "byid-local", local_id.removeprefix("sha256:")[:12])
    try:
        lab.run_container(alpha, "byid-web", web_id)
        result = run_cli(
            "drift-check", "--json", "--db", str(tmp_path / "s.db"),
            *Scenario(root, std_lab).args(),
        )  # fmt: skip
    finally:
        alpha.docker("rm", "-f", "byid-local", "byid-web")
    modules = {m["module"]: m for m in result.json()["modules"]}
    assert [c["image"] for c in modules["web"]["live"]] == [web_id]
    assert modules["web"]["status"] == "ok", modules["web"]
    assert modules["local"]["status"] == "unverifiable", modules["local"]
    assert result.code == 8
