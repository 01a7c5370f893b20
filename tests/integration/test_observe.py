"""observe end to end against the real lab: plan, write, round trip, replay, unclear cases."""

from __future__ import annotations

import difflib
import hashlib
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import Runner, StandardLab, write_compose

TAG = uuid.uuid4().hex[:6]
PROJECT = f"obs-{TAG}"
DRIFTING = ("api", "cache", "job", "web")
VALUE_KEYS = ("image_observed", "image:", "digest:", "observed_at")


@dataclass
class Platform:
    """A template platform tree (copied per test) and the lab it describes."""

    template: Path
    std: StandardLab

    def copy(self, target: Path) -> Path:
        shutil.copytree(self.template, target, symlinks=True)
        return target

    def args(self, root: Path, *extra: str) -> list[str]:
        return [*self.std.args(root), "--connect-timeout", "3", *extra]


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def tree_hash(root: Path) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in tree(root).items()}


def changed_files(patch: str) -> list[str]:
    return [line[6:] for line in patch.splitlines() if line.startswith("+++ b/")]


def manifest(root: Path, name: str, text: str) -> None:
    path = root / "modules" / name / "module.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture(scope="module")
def platform(std_lab: StandardLab, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """Drifting modules in both image_observed forms and three quoting styles, one that
    matches, and one module for each case whose live state is not clear."""
    lab, images = std_lab.lab, std_lab.images
    alpha, beta = lab.engines["alpha"], lab.engines["beta"]
    d = images.digests
    root = tmp_path_factory.mktemp("observe") / "platform"

    # The compose file is what was deployed (the deploy bumped it); the manifests are behind.
    stack = write_compose(
        root,
        PROJECT,
        {
            "api": {"image": images.honcho_303, "network_mode": "none"},
            "web": {"image": images.web_11, "network_mode": "none"},
            "steady": {"image": images.web_10, "network_mode": "none"},
            "multi": {"image": images.web_11, "network_mode": "none"},
        },
    )
    lab.compose(alpha, stack.parent, PROJECT, "up", "-d")
    lab.run_container(
        alpha,
        f"{PROJECT}_multi_2",
        images.web_10,
        labels={
            "com.docker.compose.project": PROJECT,
            "com.docker.compose.service": "multi",
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.container-number": "2",
        },
    )
    lab.run_container(beta, f"{PROJECT}-cache", images.web_11)
    lab.run_container(beta, f"{PROJECT}-job", images.web_11)
    lab.run_container(beta, f"{PROJECT}-stopped", images.web_11, running=False)
    lab.run_container(alpha, f"{PROJECT}-local", images.local_dev)

    manifest(
        root,
        "api",
        f"""# Honcho API: the memory service.
apiVersion: platform/v1
kind: Module
metadata:
  name: api
  owner: platform-team          # unknown keys are fine
  labels: {{tier: backend, pager: "yes"}}
spec:
  runtime:
    host: alpha
    orchestrator: docker-compose
    compose_service: api   # the service
    image_observed: {std_lab.ref(images.honcho_306)}   # audited by hand
  healthcheck:
    path: /health
    ports:
    - 8000
""",
    )
    manifest(
        root,
        "web",
        f"""# The mapping form.
spec:
  runtime:
    host: alpha
    orchestrator: docker-compose
    compose_service: web
    image_observed:
      image: "{images.web_10}"   # the tag we deployed
      digest: "{d[images.web_10]}"
      observed_at: 2026-11-20
      observed_by: ops@example.com
    restart: unless-stopped
""",
    )
    manifest(
        root,
        "cache",
        f"""spec:
    # four-space indentation, double quotes
    runtime:
        host: "beta"
        orchestrator: "docker"
        container: "{PROJECT}-cache"
        image_observed: "{std_lab.ref(images.web_10)}"
    notes: >
        folded text
        kept as it is
""",
    )
    manifest(
        root,
        "job",
        f"""spec:
  runtime:
    host: beta
    orchestrator: docker
    container: {PROJECT}-job
    image_observed:
      # who looked, and when
      observed_at: '2026-11-20T08:00:00Z'
      image: {images.web_10}
      digest: {d[images.web_10]}
  schedule: "0 3 * * *"
""",
    )
    manifest(
        root,
        "steady",
        f"""---
spec:
  runtime:
    host: 'alpha'
    orchestrator: 'docker-compose'
    compose_service: 'steady'
    image_observed: '{std_lab.ref(images.web_10)}'
  owners: [ alice, bob ]
""",
    )
    unclear = {
        "multi": {"orchestrator": "docker-compose", "compose_service": "multi"},
        "local": {"orchestrator": "docker", "container": f"{PROJECT}-local"},
        "stopped": {"host": "beta", "orchestrator": "docker", "container": f"{PROJECT}-stopped"},
        "gone": {"host": "beta", "orchestrator": "docker", "container": f"{PROJECT}-gone"},
        "far": {"host": "refused", "orchestrator": "docker", "container": "x"},
    }
    for name, runtime in unclear.items():
        body = {"host": "alpha", **runtime, "image_observed": std_lab.ref(images.web_10)}
        if name == "local":
            body["image_observed"] = f"{images.local_dev}@sha256:{'5' * 64}"
        manifest(root, name, "# unclear\n" + yaml.safe_dump({"spec": {"runtime": body}}))
    manifest(root, "dns", "spec:\n  runtime:\n    host: edge\n    orchestrator: external\n")
    manifest(root, "broken", "spec:\n  runtime:\n    host: alpha\n    orchestrator: [docker\n")
    return Platform(root, std_lab)


def test_a_dry_run_changes_no_byte_and_prints_the_diff_of_each_drifting_manifest(
    platform: Platform, run_cli: Runner, tmp_path: Path
) -> None:
    root = platform.copy(tmp_path / "p")
    before = tree_hash(root)
    result = run_cli("observe", *platform.args(root))
    assert tree_hash(root) == before
    assert result.code == 8, result.err  # unclear modules are in scope
    assert changed_files(result.out) == [f"modules/{m}/module.yaml" for m in sorted(DRIFTING)]
    images = platform.std.images
    assert f"+    image_observed: {platform.std.ref(images.honcho_303)}   # audited" in result.out
    assert "would change modules/api/module.yaml (api)" in result.err
    assert "skipped multi: replicas run different images" in result.err
    # Scoped to the drifting modules, the dry run says "changes pending".
    assert run_cli("observe", *DRIFTING, *platform.args(root)).code == 2
    assert tree_hash(root) == before


def test_write_changes_exactly_the_value_lines_and_the_round_trip_is_ok(
    platform: Platform, run_cli: Runner, tmp_path: Path
) -> None:
    root = platform.copy(tmp_path / "p")
    before = tree(root)
    plan = run_cli("observe", *platform.args(root))
    result = run_cli("observe", "--write", *platform.args(root))
    assert result.code == 8, result.err
    # What was shown is what was written (the timestamps aside: two runs, two snapshots).
    assert changed_files(result.out) == changed_files(plan.out)
    after = tree(root)
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [f"modules/{m}/module.yaml" for m in sorted(DRIFTING)]
    assert set(after) == set(before)  # no temporary file left, nothing added
    for name in changed:
        old, new = before[name].decode(), after[name].decode()
        lines = [
            line
            for line in difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert lines and all(any(k in line for k in VALUE_KEYS) for line in lines), lines
        assert len(old.splitlines()) == len(new.splitlines())

    images, std = platform.std.images, platform.std
    web = yaml.safe_load(after["modules/web/module.yaml"])["spec"]["runtime"]["image_observed"]
    assert web["image"] == images.web_11 and web["digest"] == images.digests[images.web_11]
    assert web["observed_by"] == "ops@example.com"
    assert (
        f'        image_observed: "{std.ref(images.web_11)}"\n'
        in after["modules/cache/module.yaml"].decode()
    )

    # A second run finds nothing to change, and drift-check agrees: the round trip.
    again = run_cli("observe", *DRIFTING, "steady", "--json", *platform.args(root))
    assert again.code == 0, again.out
    assert {m["module"]: m["status"] for m in again.json()["modules"]} == {
        "api": "unchanged",
        "cache": "unchanged",
        "job": "unchanged",
        "steady": "unchanged",
        "web": "unchanged",
    }
    assert run_cli("observe", *DRIFTING, *platform.args(root)).out == ""
    check = run_cli("drift-check", *DRIFTING, "steady", "--json", *platform.args(root))
    assert check.code == 0, check.out
    assert {m["status"] for m in check.json()["modules"]} == {"ok"}
    assert tree(root) == after  # and neither of them wrote anything


def test_json_reports_before_after_reason_and_the_snapshot(
    platform: Platform, run_cli: Runner, tmp_path: Path
) -> None:
    root = platform.copy(tmp_path / "p")
    doc = run_cli("observe", "--json", *platform.args(root)).json()
    assert doc["schema"] == "platformctl.observe/v1"
    assert doc["exit_code"] == 8 and doc["write"] is False
    assert doc["snapshot"]["replay"] is False and isinstance(doc["snapshot"]["id"], int)
    assert doc["summary"] == {"changed": 4, "unchanged": 1, "skipped": 7}
    modules = {m["module"]: m for m in doc["modules"]}
    images, std = platform.std.images, platform.std
    api = modules["api"]
    assert api["status"] == "changed" and not api["written"]
    assert api["before"] == std.ref(images.honcho_306)
    assert api["after"] == std.ref(images.honcho_303)
    assert api["manifest"] == "modules/api/module.yaml"
    assert api["diff"].startswith("--- a/modules/api/module.yaml\n+++ b/modules/api/module.yaml")
    assert modules["web"]["observed_at"] == doc["snapshot"]["taken_at"][:10]
    assert modules["job"]["observed_at"] == doc["snapshot"]["taken_at"]
    assert modules["steady"]["status"] == "unchanged" and modules["steady"]["reason"] is None
    assert modules["dns"]["status"] == "skipped" and modules["dns"]["after"] is None


@pytest.mark.parametrize(
    ("module", "code", "words"),
    [
        ("multi", 8, "replicas run different images"),
        ("local", 8, "has no registry digest"),
        ("stopped", 8, "no running container"),
        ("gone", 8, "no container"),
        ("far", 8, "host refused: "),
        ("broken", 8, "invalid: "),
        ("dns", 0, "orchestrator: external"),
    ],
)
def test_modules_whose_live_state_is_not_clear_are_left_untouched(
    platform: Platform, run_cli: Runner, tmp_path: Path, module: str, code: int, words: str
) -> None:
    root = platform.copy(tmp_path / "p")
    before = tree_hash(root)
    result = run_cli("observe", module, "--write", "--json", *platform.args(root))
    assert result.code == code, result.out + result.err
    (entry,) = result.json()["modules"]
    assert entry["status"] == "skipped" and not entry["written"]
    assert words in entry["reason"]
    assert tree_hash(root) == before


def test_a_host_not_in_the_replayed_snapshot_is_not_collected(
    platform: Platform, run_cli: Runner, tmp_path: Path
) -> None:
    root = platform.copy(tmp_path / "p")
    before = tree_hash(root)
    alpha_only = run_cli("observe", "api", "--json", *platform.args(root)).json()
    snapshot = str(alpha_only["snapshot"]["id"])
    result = run_cli(
        "observe", "cache", "--write", "--snapshot", snapshot, "--json", "--root", str(root)
    )
    assert result.code == 8
    (entry,) = result.json()["modules"]
    assert entry["status"] == "skipped" and "holds no data for host beta" in entry["reason"]
    assert tree_hash(root) == before


def test_a_replayed_snapshot_gives_the_same_plan_as_the_live_run_without_network(
    platform: Platform, run_cli: Runner, tmp_path: Path
) -> None:
    root = platform.copy(tmp_path / "p")
    live = run_cli("observe", "--json", *platform.args(root))
    snapshot = str(live.json()["snapshot"]["id"])
    empty = tmp_path / "empty_ssh_config"
    empty.write_text("")
    alpha = platform.std.lab.hosts["alpha"]
    logins = alpha.connections()
    replay_args = ["--snapshot", snapshot, "--root", str(root), "--ssh-config", str(empty)]
    replay = run_cli("observe", "--json", *replay_args)
    assert alpha.connections() == logins  # no host was contacted
    assert replay.code == live.code == 8

    def plan(doc: dict[str, object]) -> object:
        return [
            {k: m[k] for k in ("module", "status", "before", "after", "diff", "observed_at")}
            for m in doc["modules"]  # type: ignore[attr-defined]
        ]

    assert plan(replay.json()) == plan(live.json())
    assert replay.json()["snapshot"]["replay"] is True
    # The text plan too, byte for byte; and writing from the replay gives the live plan's files.
    text_live = run_cli("observe", "--snapshot", snapshot, "--root", str(root)).out
    assert text_live == "".join(m["diff"] or "" for m in live.json()["modules"])
    assert run_cli("observe", "--write", *replay_args).code == 8
    assert run_cli("observe", *DRIFTING, *platform.args(root)).code == 0
