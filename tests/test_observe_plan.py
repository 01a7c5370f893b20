"""What ``observe`` records for a module, from its verdict (docs/observe.md): on values only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from platformctl.collector.model import HostResult, HostStatus, Image
from platformctl.declared.model import ExternalModule, InvalidModule
from platformctl.differ.compare import judge
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


@pytest.mark.parametrize(
    ("host_result", "words"),
    [
        (None, "holds no data for host"),
        (HostResult("rs2000", HostStatus.UNREACHABLE, reason="connection refused"), "refused"),
        (HostResult("rs2000", HostStatus.AUTH_FAILED, reason="host key unknown"), "host key"),
        (HostResult("rs2000", HostStatus.ERROR, reason="docker is not installed"), "docker"),
        (host(), "no container"),
        (host(make_container(status="exited", running=False)), "no running container"),
        (host(make_container(status="paused", running=True)), "no running container"),
        (
            host(make_container(), make_container(id="2" * 64, name="r2", **RUNS_303)),
            "replicas run different images",
        ),
        (host(make_container(), images=(Image(ID306),)), "no registry digest"),
        (
            host(make_container(), images=(Image(ID306, (), (f"ghcr.io/other/x@{D306}",)),)),
            "only in ghcr.io/other/x",
        ),
        (host(make_container(config_image=ID306)), "not a repository reference"),
        (host(make_container(config_image=f"{REPO}@{D303}")), "no such registry digest"),
    ],
)
def test_unclear_live_states_are_skipped_with_the_reason(
    host_result: HostResult | None, words: str
) -> None:
    o = plan(make_module(), host_result)
    assert o.status is ObserveStatus.SKIPPED
    assert o.counts and o.observed is None
    assert words in (o.reason or "")
    assert for_observe([o]) is ExitCode.PARTIAL


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
