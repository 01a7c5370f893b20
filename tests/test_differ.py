"""The comparison rules (docs/design.md, "Comparison"), on values: no SSH, no SQLite."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from platformctl.collector.model import Container, HostResult, HostState, HostStatus, Image
from platformctl.declared.model import (
    CheckedModule,
    ComposeImage,
    ExternalModule,
    InvalidModule,
    Module,
    Orchestrator,
)
from platformctl.declared.reference import parse_reference
from platformctl.differ import diff
from platformctl.differ.compare import judge
from platformctl.differ.model import Check, CheckResult, ModuleStatus
from platformctl.exitcodes import ExitCode, for_report
from platformctl.output.drift_check import render_json, render_table
from platformctl.snapshots.model import SnapshotStatus

D306 = "sha256:" + "06" * 32
D303 = "sha256:" + "03" * 32
ID306 = "sha256:" + "a6" * 32
ID303 = "sha256:" + "a3" * 32
REPO = "ghcr.io/plastic-labs/honcho"


def make_module(**overrides: Any) -> CheckedModule:
    raw = overrides.pop("image", f"{REPO}:3.0.6@{D306}")
    fields: dict[str, Any] = {
        "name": "honcho-api",
        "path": Path("/p/modules/honcho-api/module.yaml"),
        "host": "rs2000",
        "orchestrator": Orchestrator.DOCKER_COMPOSE,
        "compose_service": "honcho-api",
        "compose_project": "apps",
        "declared_raw": raw,
        "declared": parse_reference(raw, default_tag=False),
    }
    fields.update(overrides)
    return CheckedModule(**fields)


def make_compose(image: str | None, **overrides: Any) -> ComposeImage:
    fields: dict[str, Any] = {
        "path": Path("/p/compose/apps/compose.yaml"),
        "project": "apps",
        "service": "honcho-api",
        "raw": image,
        "image": parse_reference(image) if image else None,
        "resolved": image is not None,
    }
    fields.update(overrides)
    return ComposeImage(**fields)


def make_container(**overrides: Any) -> Container:
    fields: dict[str, Any] = {
        "id": "1" * 64,
        "name": "apps-honcho-api-1",
        "created": None,
        "started": None,
        "status": "running",
        "running": True,
        "config_image": f"{REPO}:3.0.6",
        "image_id": ID306,
        "project": "apps",
        "service": "honcho-api",
        "oneoff": False,
        "number": "1",
    }
    fields.update(overrides)
    return Container(**fields)


IMAGES = (
    Image(ID306, (f"{REPO}:3.0.6",), (f"{REPO}@{D306}",)),
    Image(ID303, (f"{REPO}:3.0.3",), (f"{REPO}@{D303}",)),
)


def host(*containers: Container, images: tuple[Image, ...] = IMAGES, **kw: Any) -> HostResult:
    return HostResult("rs2000", HostStatus.OK, state=HostState(tuple(containers), images), **kw)


def test_matching_module_is_ok() -> None:
    verdict = judge(make_module(), host(make_container()))
    assert verdict.status is ModuleStatus.OK
    assert {c.check: c.result for c in verdict.checks} == {
        "manifest-live": CheckResult.OK,
        "compose-live": CheckResult.SKIPPED,
        "manifest-compose": CheckResult.SKIPPED,
    }


def test_seed_case_declared_306_running_303_is_drift_with_tag_and_digest_changes() -> None:
    live = make_container(config_image=f"{REPO}:3.0.3", image_id=ID303)
    verdict = judge(make_module(), host(live))
    assert verdict.status is ModuleStatus.DRIFT
    check = verdict.checks[0]
    assert check.check == "manifest-live"
    assert check.changes == {"tag": ("3.0.6", "3.0.3"), "digest": (D306, D303)}
    assert "3.0.6 → 3.0.3" in verdict.reason


def test_one_off_compose_run_containers_are_not_the_service() -> None:
    oneoff = make_container(
        id="2" * 64,
        name="apps_honcho-api_run_1",
        oneoff=True,
        config_image=f"{REPO}:3.0.3",
        image_id=ID303,
    )
    assert judge(make_module(), host(make_container(), oneoff)).status is ModuleStatus.OK
    assert judge(make_module(), host(oneoff)).status is ModuleStatus.MISSING


def test_a_leftover_replica_on_an_old_image_is_drift() -> None:
    old = make_container(
        id="3" * 64,
        name="apps-honcho-api-2",
        number="2",
        config_image=f"{REPO}:3.0.3",
        image_id=ID303,
    )
    verdict = judge(make_module(), host(make_container(), old))
    assert verdict.status is ModuleStatus.DRIFT
    assert "apps-honcho-api-2" in verdict.reason
    assert [c.container for c in verdict.live] == ["apps-honcho-api-1", "apps-honcho-api-2"]


def test_containers_match_by_labels_never_by_name() -> None:
    renamed = make_container(name="custom-name")
    assert judge(make_module(), host(renamed)).status is ModuleStatus.OK
    other_project = make_container(project="other")
    assert judge(make_module(), host(other_project)).status is ModuleStatus.MISSING
    no_project = make_module(compose_project=None)
    assert judge(no_project, host(other_project)).status is ModuleStatus.OK


@pytest.mark.parametrize("state", ["exited", "created", "paused", "restarting", "dead"])
def test_no_running_container_is_stopped(state: str) -> None:
    verdict = judge(make_module(), host(make_container(status=state, running=state == "paused")))
    assert verdict.status is ModuleStatus.STOPPED and state in verdict.reason


def test_docker_orchestrator_matches_the_container_name() -> None:
    module = make_module(
        orchestrator=Orchestrator.DOCKER,
        container="honcho",
        compose_service=None,
        compose_project=None,
    )
    assert judge(module, host(make_container(name="honcho"))).status is ModuleStatus.OK
    assert judge(module, host(make_container())).status is ModuleStatus.MISSING


def test_locally_built_image_without_repo_digests_is_unverifiable_never_ok() -> None:
    local = (Image(ID306, (f"{REPO}:3.0.6",), ()),)
    verdict = judge(make_module(), host(make_container(), images=local))
    assert verdict.status is ModuleStatus.UNVERIFIABLE
    assert "no registry digest" in verdict.reason


def test_local_image_with_a_visibly_different_tag_is_drift() -> None:
    local = (Image(ID303, (f"{REPO}:3.0.3",), ()),)
    live = make_container(config_image=f"{REPO}:3.0.3", image_id=ID303)
    assert judge(make_module(), host(live, images=local)).status is ModuleStatus.DRIFT


def test_any_repo_digest_can_match_not_only_the_first() -> None:
    several = (Image(ID306, (), (f"mirror.io/x/honcho@{D303}", f"{REPO}@{D306}")),)
    verdict = judge(make_module(), host(make_container(), images=several))
    assert verdict.status is ModuleStatus.OK


def test_match_through_another_repository_is_noted() -> None:
    mirror = (Image(ID306, (), (f"mirror.io/x/honcho@{D306}",)),)
    verdict = judge(make_module(), host(make_container(), images=mirror))
    assert verdict.status is ModuleStatus.OK
    assert "another repository" in (verdict.checks[0].note or "")


def test_image_id_equal_to_the_declared_digest_matches_containerd_store() -> None:
    live = make_container(image_id=D306)
    verdict = judge(make_module(), host(live, images=(Image(D306, (), ()),)))
    assert verdict.status is ModuleStatus.OK


def test_familiar_repo_digests_are_normalized_before_comparing() -> None:
    digest = "sha256:" + "cd" * 32
    module = make_module(image=f"docker.io/library/nginx:1.25@{digest}")
    images = (Image(ID306, ("nginx:1.25",), (f"nginx@{digest}",)),)
    verdict = judge(module, host(make_container(config_image="nginx:1.25"), images=images))
    assert verdict.status is ModuleStatus.OK


def test_index_versus_platform_digest_is_flagged_as_possible_false_drift() -> None:
    platform = "sha256:" + "ee" * 32
    module = make_module(image=f"{REPO}:3.0.6@{platform}")
    verdict = judge(module, host(make_container()))
    assert verdict.status is ModuleStatus.DRIFT
    check = verdict.checks[0]
    assert set(check.changes) == {"digest"} and "multi-arch index" in (check.note or "")
    assert verdict.live[0].digests == (f"{REPO}@{D306}",)
    assert verdict.live[0].image_id == ID306
    table = render_table(_report([module], [host(make_container())]), ExitCode.DRIFT)
    assert "multi-arch index digest, this can be false drift" in table


def test_tag_only_declaration_compares_repository_and_tag_and_is_unpinned() -> None:
    module = make_module(image=f"{REPO}:3.0.6")
    ok = judge(module, host(make_container()))
    assert ok.status is ModuleStatus.OK and "unpinned" in ok.reason
    drift = judge(module, host(make_container(config_image=f"{REPO}:3.0.3")))
    assert drift.checks[0].changes == {"tag": ("3.0.6", "3.0.3")}


def test_a_different_repository_is_drift() -> None:
    module = make_module(image=f"{REPO}:3.0.6")
    live = make_container(config_image="ghcr.io/someone-else/honcho:3.0.6")
    verdict = judge(module, host(live))
    assert verdict.status is ModuleStatus.DRIFT
    assert "repository" in verdict.checks[0].changes


def test_compose_checks_run_beside_the_manifest_check() -> None:
    module = make_module(compose=make_compose(f"{REPO}:3.0.5"))
    verdict = judge(module, host(make_container()))
    results = {c.check: (c.result, c.changes) for c in verdict.checks}
    assert results["manifest-live"][0] is CheckResult.OK
    assert results["compose-live"] == (CheckResult.DRIFT, {"tag": ("3.0.5", "3.0.6")})
    assert results["manifest-compose"] == (CheckResult.DRIFT, {"tag": ("3.0.6", "3.0.5")})
    assert verdict.status is ModuleStatus.DRIFT


def test_unresolved_or_build_only_compose_images_skip_their_checks() -> None:
    for compose in (
        make_compose(None, reason="variable X is not set in .env"),
        make_compose(None, build_only=True, resolved=True, reason="built"),
    ):
        verdict = judge(make_module(compose=compose), host(make_container()))
        assert verdict.status is ModuleStatus.OK
        skipped = {c.check for c in verdict.checks if c.result is CheckResult.SKIPPED}
        assert skipped == {"compose-live", "manifest-compose"}


def test_compose_live_checks_name_their_container_and_use_its_image_digests() -> None:
    name = "apps-honcho-api-1"
    skipped = judge(
        make_module(compose=make_compose(None, reason="variable X is not set in .env")),
        host(make_container()),
    )
    assert skipped.checks[1] == Check(
        "compose-live", CheckResult.SKIPPED, note="variable X is not set in .env", container=name
    )
    # A compose file that pins the digest is checked against the image's registry digests.
    pinned = judge(make_module(compose=make_compose(f"{REPO}@{D306}")), host(make_container()))
    assert pinned.checks[1] == Check("compose-live", CheckResult.OK, container=name)
    assert pinned.status is ModuleStatus.OK


@pytest.mark.parametrize(
    ("tags", "status", "reason"),
    [
        ((f"{REPO}:3.0.6", f"{REPO}:3"), ModuleStatus.OK, None),
        ((f"{REPO}:3.0.3", "other/name:3.0.6"), ModuleStatus.DRIFT, "tag 3.0.6 → 3.0.3"),
        (
            (),
            ModuleStatus.UNVERIFIABLE,
            "started by digest, which names no tag: the declared tag cannot be confirmed",
        ),
    ],
    ids=["tagged-as-declared", "tagged-otherwise", "untagged"],
)
def test_a_container_started_by_digest_is_named_by_its_image_tags(
    tags: tuple[str, ...], status: ModuleStatus, reason: str | None
) -> None:
    """A compose file that pins `repo@sha256:…` (or content trust) starts the container by a
    reference with no tag. Declared by tag, it is judged by its image's tags in that
    repository, as a container started by image ID is; with none the tag is unknown, which is
    neither `ok` nor a drift to a tag called "none"."""
    image = Image(ID306, tags, (f"{REPO}@{D306}",))
    container = make_container(config_image=f"{REPO}@{D306}")
    verdict = judge(make_module(image=f"{REPO}:3.0.6"), host(container, images=(image,)))
    assert verdict.status is status
    if reason is not None:
        assert reason in verdict.reason
    assert "none" not in verdict.reason


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (HostResult("rs2000", HostStatus.UNREACHABLE, "refused"), ModuleStatus.UNREACHABLE),
        (HostResult("rs2000", HostStatus.AUTH_FAILED, "key"), ModuleStatus.UNREACHABLE),
        (HostResult("rs2000", HostStatus.ERROR, "docker"), ModuleStatus.ERROR),
        (None, ModuleStatus.NOT_COLLECTED),
    ],
)
def test_host_problems_give_no_verdict(result: HostResult | None, status: ModuleStatus) -> None:
    assert judge(make_module(), result).status is status


def test_invalid_and_external_modules() -> None:
    invalid = InvalidModule(name="bad", path=Path("/p/modules/bad/module.yaml"), problem="broken")
    external = ExternalModule(name="dns", path=Path("/p"))
    assert judge(invalid, None).status is ModuleStatus.INVALID
    assert judge(external, None).status is ModuleStatus.SKIPPED


NOW = datetime(2026, 11, 27, 10, tzinfo=UTC)


def _report(modules: list[Module], hosts: list[HostResult], now: datetime = NOW) -> Any:
    return diff(
        tuple(modules),
        tuple(hosts),
        snapshot_id=1,
        taken_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
        snapshot_status=SnapshotStatus.COMPLETE,
        replay=False,
        now=now,
    )


def test_exit_codes_follow_the_contract() -> None:
    ok = make_module()
    drifting = make_module(name="drift", compose_service="other")
    elsewhere = make_module(name="far", host="far")
    external = ExternalModule(name="dns", path=Path("/p"))
    good = host(make_container())
    drift_host = host(
        make_container(),
        make_container(id="9" * 64, service="other", config_image=f"{REPO}:3.0.3", image_id=ID303),
    )
    down = HostResult("far", HostStatus.UNREACHABLE, "refused")

    assert for_report(_report([ok, external], [good])) == 0
    assert for_report(_report([ok, drifting], [drift_host])) == 2
    assert for_report(_report([ok, elsewhere], [good, down])) == 8
    assert for_report(_report([elsewhere], [down])) == 5
    assert for_report(_report([external], [])) == 0
    missing = replace(ok, compose_service="nothing")
    assert for_report(_report([missing], [good])) == 2


def test_json_and_table_show_declared_and_live_for_drift() -> None:
    live = make_container(config_image=f"{REPO}:3.0.3", image_id=ID303)
    report = _report([make_module()], [host(live)])
    doc = __import__("json").loads(render_json(report, for_report(report)))
    assert doc["schema"] == "platformctl.drift-check/v1" and doc["exit_code"] == 2
    (module,) = doc["modules"]
    assert module["checks"][0]["changes"] == {"tag": ["3.0.6", "3.0.3"], "digest": [D306, D303]}
    assert module["live"][0]["digests"] == [f"{REPO}@{D303}"]
    table = render_table(report, for_report(report))
    assert "DRIFT" in table and "honcho:3.0.6@" + D306[7:19] in table
    assert "honcho:3.0.3@" + D303[7:19] in table
    assert "tag 3.0.6 → 3.0.3" in table


@pytest.mark.parametrize(
    ("result", "status", "reason"),
    [
        (None, ModuleStatus.NOT_COLLECTED, "the snapshot holds no data for host rs2000"),
        (
            HostResult("rs2000", HostStatus.AUTH_FAILED, "key refused"),
            ModuleStatus.UNREACHABLE,
            "host rs2000: key refused",
        ),
        (
            HostResult("rs2000", HostStatus.ERROR, "docker: denied"),
            ModuleStatus.ERROR,
            "host rs2000: docker: denied",
        ),
        (
            HostResult("rs2000", HostStatus.OK, "no state read"),
            ModuleStatus.ERROR,
            "host rs2000: no state read",
        ),
        (
            host(),
            ModuleStatus.MISSING,
            "no container of compose service 'honcho-api' (project 'apps') on rs2000",
        ),
    ],
)
def test_without_live_evidence_the_static_compose_check_is_still_reported(
    result: HostResult | None, status: ModuleStatus, reason: str
) -> None:
    module = make_module(compose=make_compose(f"{REPO}:3.0.5"))
    verdict = judge(module, result)
    assert (verdict.module, verdict.status, verdict.reason) == (module, status, reason)
    # manifest-compose needs no host: it is reported whatever the host said.
    assert [(c.check, c.result) for c in verdict.checks] == [
        ("manifest-compose", CheckResult.DRIFT)
    ]


def test_live_evidence_and_checks_follow_container_names() -> None:
    two = host(
        make_container(id="2" * 64, name="apps-honcho-api-2", number="2"),
        make_container(id="1" * 64, name="apps-honcho-api-1"),
    )
    verdict = judge(make_module(), two)
    assert [e.container for e in verdict.live] == ["apps-honcho-api-1", "apps-honcho-api-2"]
    one, two_ = "apps-honcho-api-1", "apps-honcho-api-2"
    assert [c.container for c in verdict.checks] == [one, one, two_, two_, None]
    external = judge(ExternalModule("dns", Path("/p/modules/dns/module.yaml"), "edge"), None)
    assert (external.status, external.reason) == (ModuleStatus.SKIPPED, "orchestrator: external")
