"""Which status wins and which exit code a mix of statuses gives: the orderings a one-line
slip would silently invert (each test names the slip it catches)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from platformctl.clock import from_iso
from platformctl.collector.model import Container, HostResult, HostState, HostStatus, Image
from platformctl.declared.model import ExternalModule, InvalidModule, Module
from platformctl.differ import diff
from platformctl.differ.compare import judge
from platformctl.differ.history import module_history
from platformctl.differ.model import Check, ModuleStatus, Report
from platformctl.exitcodes import for_report
from platformctl.snapshots.model import ChangePoint, SnapshotStatus
from tests.test_differ import (
    D303,
    D306,
    ID303,
    ID306,
    IMAGES,
    REPO,
    _report,
    host,
    make_compose,
    make_container,
    make_module,
)

UNPUSHED = "sha256:" + "b1" * 32
# An image built on the host: a tag, no registry digest.
LOCAL = Image(UNPUSHED, (f"{REPO}:3.0.6",), ())

AT = datetime(2026, 11, 27, 10, tzinfo=UTC)


def replica(name: str, **overrides: object) -> Container:
    return make_container(id=name.encode().hex().ljust(64, "0")[:64], name=name, **overrides)


def test_drift_outranks_unverifiable_in_a_module() -> None:
    """One replica on a wrong image, one whose digest cannot be confirmed: the module is
    drift (a verdict), not unverifiable (no verdict)."""
    unconfirmed = replica("a-unconfirmed", image_id=UNPUSHED)
    wrong = replica("b-wrong", config_image=f"{REPO}:3.0.3", image_id=ID303)
    verdict = judge(make_module(), host(unconfirmed, wrong, images=(*IMAGES, LOCAL)))
    assert {c.result.value for c in verdict.checks if c.check == "manifest-live"} == {
        "drift",
        "unverifiable",
    }
    assert verdict.status is ModuleStatus.DRIFT
    assert "b-wrong" in verdict.reason


def test_a_compose_drift_outranks_an_unverifiable_manifest_check() -> None:
    module = make_module(compose=make_compose(f"{REPO}:3.0.5"))
    verdict = judge(module, host(make_container(image_id=UNPUSHED), images=(LOCAL,)))
    assert verdict.status is ModuleStatus.DRIFT


def test_missing_wins_over_stopped_when_no_container_exists() -> None:
    assert judge(make_module(), host()).status is ModuleStatus.MISSING
    exited = make_container(status="exited", running=False)
    assert judge(make_module(), host(exited)).status is ModuleStatus.STOPPED


def test_one_running_replica_makes_the_module_running() -> None:
    exited = replica("b-old", status="exited", running=False)
    assert judge(make_module(), host(make_container(), exited)).status is ModuleStatus.OK


@pytest.mark.parametrize(
    ("state", "running", "expected"),
    [
        ("restarting", True, ModuleStatus.DRIFT),  # a crash loop its restart policy keeps up
        ("paused", True, ModuleStatus.DRIFT),  # runs again once unpaused
        ("exited", False, ModuleStatus.OK),  # a leftover: shown, not judged
        ("created", False, ModuleStatus.OK),
    ],
)
def test_a_replica_on_another_image_beside_a_running_one_counts_unless_it_is_left_over(
    state: str, running: bool, expected: ModuleStatus
) -> None:
    other = replica(
        "b-other", status=state, running=running, config_image=f"{REPO}:3.0.3", image_id=ID303
    )
    verdict = judge(make_module(), host(make_container(), other))
    assert verdict.status is expected
    assert [c.container for c in verdict.live] == ["apps-honcho-api-1", "b-other"]


# --- history: "the worst seen" in an interval (missing > stopped > drift > unverifiable) ---

STATES = {
    1: HostState((make_container(),), IMAGES),  # ok
    2: HostState((make_container(image_id=UNPUSHED),), (LOCAL,)),  # unverifiable
    3: HostState((make_container(config_image=f"{REPO}:3.0.3", image_id=ID303),), IMAGES),
    4: HostState((make_container(status="exited", running=False),), IMAGES),  # stopped
    5: HostState((), IMAGES),  # missing
}


def points(*state_ids: int) -> list[ChangePoint]:
    return [
        ChangePoint(i + 1, from_iso(f"2026-11-{i + 1:02d}T00:00:00Z"), "rs2000", HostStatus.OK, sid)
        for i, sid in enumerate(state_ids)
    ]


@pytest.mark.parametrize(
    ("sequence", "worst"),
    [
        ((2, 3, 2), ModuleStatus.DRIFT),
        ((3, 4, 3), ModuleStatus.STOPPED),
        ((4, 5, 4), ModuleStatus.MISSING),
        ((5, 4, 3, 2), ModuleStatus.MISSING),
        ((2, 4, 3), ModuleStatus.STOPPED),
    ],
)
def test_an_interval_takes_the_worst_status_seen(
    sequence: tuple[int, ...], worst: ModuleStatus
) -> None:
    history = module_history(make_module(), points(1, *sequence, 1), STATES, now=AT)
    (interval,) = history.intervals
    assert interval.status is worst
    assert (interval.start, interval.end) == (
        from_iso("2026-11-02T00:00:00Z"),
        from_iso(history_end(sequence)),
    )


def history_end(sequence: tuple[int, ...]) -> str:
    return f"2026-11-{len(sequence) + 2:02d}T00:00:00Z"


# --- exit codes: 5 before 8 before 2 before 0 ---


def report(*pairs: tuple[Module, HostResult | None]) -> Report:
    hosts = {h.host: h for _, h in pairs if h is not None}
    return diff(
        tuple(m for m, _ in pairs),
        tuple(hosts.values()),
        snapshot_id=1,
        taken_at=AT,
        snapshot_status=SnapshotStatus.PARTIAL,
        replay=False,
        now=AT,
    )


def on(name: str, host_name: str) -> Module:
    return make_module(name=name, host=host_name, compose_service=name)


def result(host_name: str, status: HostStatus, *containers: Container) -> HostResult:
    if status is not HostStatus.OK:
        return HostResult(host_name, status, "reason")
    return HostResult(host_name, status, state=HostState(containers, IMAGES))


def drifting(service: str) -> Container:
    return make_container(service=service, config_image=f"{REPO}:3.0.3", image_id=ID303)


def test_drift_beside_a_module_without_verdict_is_partial_8_not_2() -> None:
    a = result("a", HostStatus.OK, drifting("drifts"))
    b = result("b", HostStatus.UNREACHABLE)
    assert for_report(report((on("drifts", "a"), a), (on("far", "b"), b))) == 8
    invalid = InvalidModule(name="bad", path=Path("/p/modules/bad/module.yaml"), problem="broken")
    assert for_report(report((on("drifts", "a"), a), (invalid, None))) == 8


def test_drift_alone_is_2() -> None:
    a = result("a", HostStatus.OK, drifting("drifts"))
    assert for_report(report((on("drifts", "a"), a))) == 2


def test_a_host_whose_docker_failed_was_reached_so_8_not_5() -> None:
    """It answered over SSH; only its Docker state could not be read."""
    failed = result("a", HostStatus.ERROR)
    assert failed.reached
    assert for_report(report((on("x", "a"), failed))) == 8
    for down in (HostStatus.UNREACHABLE, HostStatus.AUTH_FAILED):
        pair = (on("y", "b"), result("b", down))
        assert for_report(report((on("x", "a"), failed), pair)) == 8


@pytest.mark.parametrize("status", [HostStatus.UNREACHABLE, HostStatus.AUTH_FAILED])
def test_no_host_answering_is_5(status: HostStatus) -> None:
    assert not result("a", status).reached
    assert for_report(report((on("x", "a"), result("a", status)))) == 5
    both = report((on("x", "a"), result("a", status)), (on("y", "b"), result("b", status)))
    assert for_report(both) == 5


def test_a_replay_missing_a_host_is_partial_8_though_the_hosts_it_holds_were_down() -> None:
    """The snapshot holds host a, unreachable, and not host b (a `collect --host a`): b was
    never tried, so not every host in scope failed to answer."""
    pairs = ((on("x", "a"), result("a", HostStatus.UNREACHABLE)), (on("y", "b"), None))
    replayed = report(*pairs)
    assert [v.status.value for v in replayed.modules] == ["unreachable", "not-collected"]
    assert for_report(replayed) == 8


def test_only_skipped_modules_exit_0_with_no_host_in_scope() -> None:
    external = ExternalModule(name="dns", path=Path("/p"))
    assert for_report(report((external, None))) == 0


def test_unverifiable_alone_is_8_not_0() -> None:
    state = HostState((make_container(image_id=UNPUSHED),), (LOCAL,))
    unconfirmed = HostResult("a", HostStatus.OK, state=state)
    assert for_report(report((make_module(host="a"), unconfirmed))) == 8


# --- small rules the mutation run found unguarded ---


def test_an_external_module_needs_no_host_even_when_it_names_one() -> None:
    from platformctl.differ import hosts_in_scope

    external = ExternalModule(name="dns", path=Path("/p"), host="edge")
    invalid = InvalidModule(name="bad", path=Path("/p"), problem="broken")
    assert hosts_in_scope([external, invalid, on("x", "b"), on("y", "a"), on("z", "b")]) == [
        "a",
        "b",
    ]


def test_the_summary_counts_each_status_once_and_lists_every_status() -> None:
    a = result("a", HostStatus.OK, drifting("drifts"))
    doc = report((on("drifts", "a"), a), (on("gone", "a"), a), (on("far", "b"), None))
    assert doc.summary() == {
        "ok": 0,
        "accepted": 0,
        "drift": 1,
        "missing": 1,
        "stopped": 0,
        "unverifiable": 0,
        "unreachable": 0,
        "error": 0,
        "not-collected": 1,
        "invalid": 0,
        "skipped": 0,
    }


def test_an_interval_ending_exactly_at_the_window_start_is_outside_it() -> None:
    from datetime import UTC, datetime

    history = module_history(make_module(), points(1, 3, 1), STATES, now=AT)
    (interval,) = history.intervals
    assert interval.end == from_iso("2026-11-03T00:00:00Z")
    edge = datetime(2026, 11, 3, tzinfo=UTC)
    assert history.within(edge) == ()
    assert history.seconds_within(edge, datetime(2026, 11, 10, tzinfo=UTC)) == 0
    assert history.within(datetime(2026, 11, 2, 23, 59, 59, tzinfo=UTC)) == (interval,)


def test_a_timestamp_without_zone_is_utc() -> None:
    from datetime import UTC, datetime

    from platformctl.clock import from_iso as parse_time

    assert parse_time("2026-11-03T00:00:00") == datetime(2026, 11, 3, tzinfo=UTC)
    assert parse_time("2026-11-03T00:00:00Z") == datetime(2026, 11, 3, tzinfo=UTC)
    assert parse_time("2026-11-03T01:00:00+01:00") == datetime(2026, 11, 3, tzinfo=UTC)


def test_drift_since_is_none_once_the_last_interval_closed() -> None:
    from platformctl.differ.history import drift_since

    closed = module_history(make_module(), points(3, 1), STATES, now=AT)
    assert drift_since(closed, ModuleStatus.DRIFT) is None
    reopened = module_history(make_module(), points(3, 1, 4), STATES, now=AT)
    assert drift_since(reopened, ModuleStatus.STOPPED) == from_iso("2026-11-03T00:00:00Z")


def test_the_summary_counts_two_of_a_kind_as_two() -> None:
    a = result("a", HostStatus.OK, drifting("one"), drifting("two"))
    assert report((on("one", "a"), a), (on("two", "a"), a)).summary()["drift"] == 2


def test_each_live_check_names_its_container_and_the_static_one_none() -> None:
    module = make_module(compose=make_compose(f"{REPO}:3.0.6"))
    verdict = judge(module, host(replica("a"), replica("b", **WRONG_IMAGE)))
    assert [(c.check, c.container) for c in verdict.checks] == [
        ("manifest-live", "a"),
        ("compose-live", "a"),
        ("manifest-live", "b"),
        ("compose-live", "b"),
        ("manifest-compose", None),
    ]
    assert [c.container for c in verdict.live] == ["a", "b"]
    assert [c.running for c in verdict.live] == [True, True]


WRONG_IMAGE = {"config_image": f"{REPO}:3.0.3", "image_id": ID303}


def test_a_live_image_without_tag_is_latest() -> None:
    untagged = make_container(config_image=REPO)
    latest = judge(make_module(image=f"{REPO}:latest"), host(untagged))
    assert latest.status is ModuleStatus.OK
    pinned = judge(make_module(image=f"{REPO}:3.0.6"), host(untagged))
    assert pinned.checks[0].changes == {"tag": ("3.0.6", "latest")}


def test_an_ok_host_without_state_is_an_error_not_a_verdict() -> None:
    assert judge(make_module(), HostResult("rs2000", HostStatus.OK)).status is ModuleStatus.ERROR


def test_manifest_compose_compares_only_what_both_pin() -> None:
    from platformctl.declared.reference import parse_reference
    from platformctl.differ.compare import manifest_compose

    declared = parse_reference(f"{REPO}:3.0.6@sha256:" + "06" * 32, default_tag=False)
    same_tag = manifest_compose(declared, make_compose(f"{REPO}:3.0.6"), True)
    assert (same_tag.result.value, same_tag.changes) == ("ok", {})
    other_digest = manifest_compose(declared, make_compose(f"{REPO}@sha256:" + "07" * 32), True)
    assert other_digest.changes == {"digest": ("sha256:" + "06" * 32, "sha256:" + "07" * 32)}
    tag_only = parse_reference(f"{REPO}:3.0.6", default_tag=False)
    by_digest = manifest_compose(tag_only, make_compose(f"{REPO}@sha256:" + "07" * 32), True)
    assert (by_digest.result.value, by_digest.changes) == ("ok", {})
    # A bare name is :latest, as docker pulls it; a digest alone pins no tag.
    bare = parse_reference(REPO, default_tag=False)
    assert manifest_compose(bare, make_compose(f"{REPO}:3.0.6"), True).changes == {
        "tag": ("latest", "3.0.6")
    }
    digest_only = parse_reference(f"{REPO}@sha256:" + "06" * 32, default_tag=False)
    pinned = manifest_compose(digest_only, make_compose(f"{REPO}:3.0.6@sha256:" + "06" * 32), True)
    assert (pinned.result.value, pinned.changes) == ("ok", {})


def test_a_digest_drift_reports_the_digest_of_the_declared_repository() -> None:
    other = "sha256:" + "0f" * 32
    image = Image(ID306, (), (f"mirror.io/x/honcho@{other}", f"{REPO}@sha256:" + "03" * 32))
    verdict = judge(make_module(), host(make_container(), images=(image,)))
    assert verdict.checks[0].changes["digest"] == ("sha256:" + "06" * 32, "sha256:" + "03" * 32)


# --- a container started by image ID (`docker run 4f3c…`): Config.Image is that ID as typed ---


def by_id(image_id: str, typed: str) -> Container:
    return make_container(config_image=typed, image_id=image_id)


def manifest_live_of(module: Module, result: HostResult) -> tuple[ModuleStatus, Check]:
    verdict = judge(module, result)
    (check,) = [c for c in verdict.checks if c.check == "manifest-live"]
    return verdict.status, check


@pytest.mark.parametrize(
    "typed", [UNPUSHED, UNPUSHED[7:19], UNPUSHED[7:]], ids=["id", "short", "hex"]
)
def test_a_local_image_started_by_id_is_unverifiable_not_a_repository_called_sha256(
    typed: str,
) -> None:
    """Its image has a tag and no registry digest: the declared digest cannot be confirmed.
    Read as a reference the ID would be a repository `sha256` (or `b1b1…`) and drift."""
    status, check = manifest_live_of(make_module(), host(by_id(UNPUSHED, typed), images=(LOCAL,)))
    assert status is ModuleStatus.UNVERIFIABLE
    assert check.changes == {}


def test_a_container_started_by_id_drifts_by_the_names_of_its_image() -> None:
    status, check = manifest_live_of(make_module(), host(by_id(ID303, ID303[7:19])))
    assert status is ModuleStatus.DRIFT
    assert check.changes == {"tag": ("3.0.6", "3.0.3"), "digest": (D306, D303)}
    assert check.note == f"started by image ID; its image is tagged {REPO}:3.0.3"


@pytest.mark.parametrize(
    ("declared", "tags", "expected"),
    [
        (f"{REPO}:3.0.6", (f"{REPO}:3.0.6", "other/name:9"), ModuleStatus.OK),
        (f"{REPO}:3.0.6", (f"{REPO}:3.0.3",), ModuleStatus.DRIFT),
        (f"{REPO}:3.0.6", (), ModuleStatus.UNVERIFIABLE),
    ],
    ids=["tagged-as-declared", "tagged-otherwise", "untagged"],
)
def test_a_container_started_by_id_declared_by_tag_is_judged_by_its_image_tags(
    declared: str, tags: tuple[str, ...], expected: ModuleStatus
) -> None:
    """Declared by tag only, the tags its image carries are the only names it has; an image
    with none gives nothing to compare, which is no `ok`."""
    image = Image(UNPUSHED, tags, ())
    status, _ = manifest_live_of(
        make_module(image=declared), host(by_id(UNPUSHED, UNPUSHED[7:15]), images=(image,))
    )
    assert status is expected


def test_a_hex_repository_name_that_is_not_the_image_id_stays_a_reference() -> None:
    """`deadbeef:1` names a repository: only the image's own ID, or a prefix of it, is read
    as one."""
    status, check = manifest_live_of(
        make_module(image=f"{REPO}:3.0.6"), host(make_container(config_image="deadbeef"))
    )
    assert status is ModuleStatus.DRIFT
    assert check.changes["repository"] == (REPO, "docker.io/library/deadbeef")


def test_started_by_id_on_an_untagged_image_compares_the_repository_of_its_digests() -> None:
    """`docker pull repo@sha256:…` leaves an image with digests and no tag: its repository is
    still compared; the tag, unknown, is not, and is not said to be the same."""
    mirror = Image(UNPUSHED, (), ("mirror.io/other/thing@sha256:" + "cc" * 32,))
    typed = UNPUSHED[7:19]
    status, check = manifest_live_of(make_module(), host(by_id(UNPUSHED, typed), images=(mirror,)))
    assert status is ModuleStatus.DRIFT
    assert check.changes == {
        "repository": (REPO, "mirror.io/other/thing"),
        "digest": (D306, "sha256:" + "cc" * 32),
    }
    assert (
        check.note == "started by image ID; its untagged image has digests of mirror.io/other/thing"
    )
    assert typed not in str(check.changes)
    own = Image(UNPUSHED, (), (f"{REPO}@sha256:" + "cc" * 32,))
    _, same_repo = manifest_live_of(make_module(), host(by_id(UNPUSHED, typed), images=(own,)))
    assert same_repo.changes == {"digest": (D306, "sha256:" + "cc" * 32)}
    assert same_repo.note is not None and same_repo.note.startswith("same repository, other digest")
    tag_only, _ = manifest_live_of(
        make_module(image=f"{REPO}:3.0.6"), host(by_id(UNPUSHED, typed), images=(own,))
    )
    assert tag_only is ModuleStatus.UNVERIFIABLE


def test_a_name_docker_knows_is_a_name_even_when_it_spells_an_id_prefix() -> None:
    """`docker run cafe` runs the image tagged cafe:latest when there is one, whatever its ID
    begins with; and a compose file that names the image by its ID is matched as written."""
    cafe_id = "sha256:cafe" + "0" * 60
    cafe = Image(cafe_id, ("cafe:latest",), ())
    status, check = manifest_live_of(
        make_module(image="cafe:latest"),
        host(make_container(config_image="cafe", image_id=cafe_id), images=(cafe,)),
    )
    assert (status, check.note) == (ModuleStatus.OK, "unpinned: declared by tag only, no digest")
    typed = UNPUSHED[7:19]
    module = make_module(image=f"{REPO}:3.0.6", compose=make_compose(typed))
    verdict = judge(module, host(by_id(UNPUSHED, typed), images=(LOCAL,)))
    assert {c.check: c.result.value for c in verdict.checks} == {
        "manifest-live": "ok",
        "compose-live": "ok",
        "manifest-compose": "drift",
    }


def test_the_table_shows_a_container_started_by_id_by_its_image_id() -> None:
    from platformctl.output.drift_check import render_table

    report = _report([make_module()], [host(by_id(UNPUSHED, UNPUSHED), images=(LOCAL,))])
    table = render_table(report, for_report(report))
    row = table.splitlines()[1]  # read as a name the ID was `sha256:b1b1b1…` in full
    assert row.split()[-3:-1] == ["image", UNPUSHED[7:19]]  # LIVE, then SINCE
