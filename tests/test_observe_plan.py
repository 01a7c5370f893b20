"""What ``observe`` records for a module, from its verdict (docs/observe.md): on values only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from platformctl.collector.model import HostResult, HostStatus, Image
from platformctl.declared.model import ExternalModule, InvalidModule
from platformctl.declared.reference import try_parse_reference
from platformctl.differ.compare import judge
from platformctl.differ.model import ModuleStatus, ModuleVerdict
from platformctl.differ.observe import Observation, ObserveStatus, observe
from platformctl.exitcodes import ExitCode, for_observe
from tests.test_differ import (
    D303,
    D306,
    ID303,
    ID306,
    REPO,
    host,
    make_container,
    make_module,
)

AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
RUNS_303 = {"config_image": f"{REPO}:3.0.3", "image_id": ID303}


def plan(module: object, host_result: HostResult | None) -> Observation:
    return observe(judge(module, host_result), AT)  # type: ignore[arg-type]


def test_a_drifting_module_gets_the_tag_and_registry_digest_it_runs() -> None:
    o = plan(make_module(), host(make_container(**RUNS_303)))
    assert o.status is ObserveStatus.CHANGED
    assert o.observed is not None
    assert o.observed.reference == f"{REPO}:3.0.3@{D303}"
    assert o.observed.at == AT


def test_a_module_that_already_records_what_runs_is_unchanged() -> None:
    o = plan(make_module(), host(make_container()))
    assert o.status is ObserveStatus.UNCHANGED


def test_a_tag_only_record_gets_pinned_to_the_digest() -> None:
    o = plan(make_module(image=f"{REPO}:3.0.6"), host(make_container()))
    assert o.status is ObserveStatus.CHANGED
    assert o.observed is not None and o.observed.reference == f"{REPO}:3.0.6@{D306}"


def test_the_manifest_spelling_of_the_repository_is_kept() -> None:
    hub = "docker.io/library/nginx"
    images = (Image(ID303, ("nginx:1.26",), (f"{hub}@{D303}",)),)
    live = make_container(config_image="nginx:1.26", image_id=ID303)
    o = plan(make_module(image=f"nginx:1.25@{D306}"), host(live, images=images))
    assert o.observed is not None and o.observed.reference == f"nginx:1.26@{D303}"
    # Another repository: spelled as the container's Config.Image spells it.
    o = plan(make_module(image=f"ghcr.io/x/nginx:1.25@{D306}"), host(live, images=images))
    assert o.observed is not None and o.observed.reference == f"nginx:1.26@{D303}"


def test_deployed_by_digest_records_no_tag_and_a_matching_digest_is_unchanged() -> None:
    live = make_container(config_image=f"{REPO}@{D303}", image_id=ID303)
    o = plan(make_module(), host(live))
    assert o.status is ObserveStatus.CHANGED
    assert o.observed is not None and o.observed.reference == f"{REPO}@{D303}"
    assert plan(make_module(image=f"{REPO}:3.0.3@{D303}"), host(live)).status is (
        ObserveStatus.UNCHANGED
    )


def test_several_digests_in_the_repository_keep_the_declared_one_or_are_unclear() -> None:
    images = (Image(ID306, (), (f"{REPO}@{D306}", f"{REPO}@{D303}")),)
    o = plan(make_module(), host(make_container(), images=images))
    assert o.status is ObserveStatus.UNCHANGED
    o = plan(make_module(image=f"{REPO}:3.0.6"), host(make_container(), images=images))
    assert o.status is ObserveStatus.SKIPPED and "several registry digests" in (o.reason or "")


SERVICE = "compose service 'honcho-api' (project 'apps')"
A306 = "a6a6a6a6a6a6"  # ID306, as a user reads it
LOCAL = (
    "built or loaded locally, or pushed elsewhere; "
    "recording a tag without a digest would be a false audit"
)


@pytest.mark.parametrize(
    ("host_result", "reason"),
    [
        (None, "the snapshot holds no data for host rs2000"),
        (
            HostResult("rs2000", HostStatus.UNREACHABLE, reason="connection refused"),
            "host rs2000: connection refused",
        ),
        (
            HostResult("rs2000", HostStatus.AUTH_FAILED, reason="host key unknown"),
            "host rs2000: host key unknown",
        ),
        (
            HostResult("rs2000", HostStatus.ERROR, reason="docker is not installed"),
            "host rs2000: docker is not installed",
        ),
        (host(), f"no container: no container of {SERVICE} on rs2000"),
        (
            host(make_container(status="exited", running=False)),
            f"no running container: container of {SERVICE} exists but is not running (exited)",
        ),
        (
            host(make_container(status="paused", running=True)),
            f"no running container: container of {SERVICE} exists but is not running (paused)",
        ),
        (
            host(make_container(), make_container(id="2" * 64, name="r2", **RUNS_303)),
            f"replicas run different images (apps-honcho-api-1: {REPO}:3.0.6 ({A306}), "
            f"r2: {REPO}:3.0.3 (a3a3a3a3a3a3))",
        ),
        (  # a replica its restart policy keeps restarting counts, as in the verdict
            host(
                make_container(),
                make_container(id="2" * 64, name="r2", status="restarting", **RUNS_303),
            ),
            f"replicas run different images (apps-honcho-api-1: {REPO}:3.0.6 ({A306}), "
            f"r2: {REPO}:3.0.3 (a3a3a3a3a3a3))",
        ),
        (
            host(make_container(), images=(Image(ID306),)),
            f"image {A306} of apps-honcho-api-1 has no registry digest in {REPO}: {LOCAL}",
        ),
        (
            host(
                make_container(),
                images=(Image(ID306, (), ("not a reference", f"ghcr.io/other/x@{D306}")),),
            ),
            f"image {A306} of apps-honcho-api-1 has no registry digest in {REPO}"
            f" (only in ghcr.io/other/x): {LOCAL}",
        ),
        (
            host(make_container(config_image=ID306)),
            f"apps-honcho-api-1 runs {ID306!r}, not a repository reference",
        ),
        (  # `docker run a6a6`: any prefix of the image ID, as docker takes it
            host(make_container(config_image=ID306[7:11])),
            f"apps-honcho-api-1 runs {ID306[7:11]!r}, not a repository reference",
        ),
        (
            host(make_container(config_image=f"{REPO}@{D303}")),
            f"apps-honcho-api-1 was started as {REPO}@{D303} but its image carries no such "
            "registry digest",
        ),
    ],
)
def test_unclear_live_states_are_skipped_with_the_reason(
    host_result: HostResult | None, reason: str
) -> None:
    verdict = judge(make_module(), host_result)
    o = observe(verdict, AT)
    assert o.status is ObserveStatus.SKIPPED
    assert o.reason == reason
    # The skip stays tied to its module: the table and the JSON name it.
    assert o.verdict is verdict and o.module.name == "honcho-api"
    assert o.counts and o.observed is None
    assert for_observe([o]) is ExitCode.PARTIAL


@pytest.mark.parametrize("status", [ModuleStatus.INVALID, ModuleStatus.SKIPPED])
def test_a_module_the_differ_did_not_check_is_never_observed_whatever_runs(
    status: ModuleStatus,
) -> None:
    verdict = ModuleVerdict(
        make_module(),
        status,
        "not checked",
        live=judge(make_module(), host(make_container(**RUNS_303))).live,
    )
    o = observe(verdict, AT)
    assert (o.status, o.reason, o.observed) == (ObserveStatus.SKIPPED, "not checked", None)
    assert o.verdict is verdict


def test_an_untagged_image_is_recorded_as_latest_in_the_repository_as_spelled() -> None:
    # A bare name, a registry with a port, and a tagless reference keep their spelling.
    for declared, live_image, expected in [
        ("nginx", "nginx", f"nginx:latest@{D303}"),
        (
            "localhost:5000/team/app:1.0",
            "localhost:5000/team/app",
            f"localhost:5000/team/app:latest@{D303}",
        ),
        (
            "localhost:5000/team/app",
            "localhost:5000/team/app:2.0",
            f"localhost:5000/team/app:2.0@{D303}",
        ),
    ]:
        ref = try_parse_reference(live_image)
        assert ref is not None
        images = (Image(ID303, (), (f"{ref.repository}@{D303}",)),)
        live = make_container(config_image=live_image, image_id=ID303)
        o = plan(make_module(image=declared), host(live, images=images))
        assert o.status is ObserveStatus.CHANGED, (declared, o.reason)
        assert o.observed is not None and o.observed.reference == expected


def test_a_record_matches_only_with_the_same_tag_unless_it_names_none() -> None:
    images = (Image(ID303, (), (f"{REPO}@{D303}",)),)
    by_tag_and_digest = make_container(config_image=f"{REPO}:3.0.3@{D303}", image_id=ID303)
    # Deployed as 3.0.3@D303, recorded as 3.0.5@D303: the tag in the record is wrong.
    o = plan(make_module(image=f"{REPO}:3.0.5@{D303}"), host(by_tag_and_digest, images=images))
    assert o.status is ObserveStatus.CHANGED
    assert o.observed is not None and o.observed.reference == f"{REPO}:3.0.3@{D303}"
    # A digest-only record names no tag, so the running tag does not make it stale.
    by_tag = make_container(config_image=f"{REPO}:3.0.3", image_id=ID303)
    o = plan(make_module(image=f"{REPO}@{D303}"), host(by_tag, images=images))
    assert o.status is ObserveStatus.UNCHANGED


def test_invalid_modules_count_and_external_ones_do_not() -> None:
    path = Path("/p/modules/x/module.yaml")
    invalid = plan(InvalidModule("x", path, "bad YAML"), None)
    external = plan(ExternalModule("dns", path, "edge"), None)
    assert invalid.status is external.status is ObserveStatus.SKIPPED
    assert "bad YAML" in (invalid.reason or "")
    assert for_observe([invalid]) is ExitCode.PARTIAL
    assert for_observe([external]) is ExitCode.OK


def test_exit_codes() -> None:
    changed = plan(make_module(), host(make_container(**RUNS_303)))
    unchanged = plan(make_module(), host(make_container()))
    skipped = plan(make_module(), None)
    assert for_observe([]) is ExitCode.OK
    assert for_observe([unchanged]) is ExitCode.OK
    assert for_observe([unchanged, changed]) is ExitCode.DRIFT
    assert for_observe([replace(changed, written=True)]) is ExitCode.OK
    # A partial run must not look like a complete one: 8 before 2.
    assert for_observe([changed, skipped]) is ExitCode.PARTIAL
