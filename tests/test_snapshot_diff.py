"""What changed on the hosts between two snapshots (``snapshots diff``), on values: no SQLite,
no CLI process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from platformctl.collector.model import Container, HostResult, HostState, HostStatus, Image
from platformctl.differ.snapshot_diff import (
    ContainerChange,
    HostDiff,
    diff_hosts,
    diff_snapshots,
)
from platformctl.output.snapshots import diff_json, diff_table
from platformctl.snapshots.model import Snapshot, SnapshotStatus

ID1 = "sha256:" + "a1" * 32
ID2 = "sha256:" + "a2" * 32
D1 = "ghcr.io/acme/api@sha256:" + "d1" * 32
D2 = "ghcr.io/acme/api@sha256:" + "d2" * 32
MIRROR = "mirror.example/acme/api@sha256:" + "d1" * 32
STARTED = "2026-11-20T08:00:00Z"


def make_container(name: str = "apps-api-1", **overrides: Any) -> Container:
    fields: dict[str, Any] = {
        "id": f"id-{name}",
        "name": name,
        "created": "2026-11-20T07:59:00Z",
        "started": STARTED,
        "status": "running",
        "running": True,
        "config_image": "ghcr.io/acme/api:1.0",
        "image_id": ID1,
    }
    fields.update(overrides)
    return Container(**fields)


IMAGES = (
    Image(ID1, ("ghcr.io/acme/api:1.0",), (D1,)),
    Image(ID2, ("ghcr.io/acme/api:2.0",), (D2,)),
)


def ok(host: str, *containers: Container, images: tuple[Image, ...] = IMAGES) -> HostResult:
    return HostResult(host, HostStatus.OK, state=HostState(containers, images))


def failed(host: str, status: HostStatus = HostStatus.UNREACHABLE) -> HostResult:
    return HostResult(host, status, reason="timed out")


def snapshot(snapshot_id: int, *hosts: HostResult) -> Snapshot:
    return Snapshot(
        snapshot_id,
        datetime(2026, 11, 20, snapshot_id, tzinfo=UTC),
        SnapshotStatus.COMPLETE,
        "1.0",
        hosts,
    )


def test_an_unchanged_host_has_an_empty_diff() -> None:
    before = ok("web", make_container("a"), make_container("b", image_id=ID2))
    after = ok("web", make_container("b", image_id=ID2), make_container("a"))
    result = diff_hosts(before, after, "web")
    assert result == HostDiff("web")
    assert result.empty


def test_containers_added_and_removed_by_name_in_name_order() -> None:
    before = ok("web", make_container("keep"), make_container("old-2"), make_container("old-1"))
    after = ok("web", make_container("zeta"), make_container("keep"), make_container("alpha"))
    assert diff_hosts(before, after, "web") == HostDiff(
        "web", added=("alpha", "zeta"), removed=("old-1", "old-2")
    )


def test_every_container_replaced_is_still_listed_one_by_one() -> None:
    # No container name in common: still per container, never "the whole host changed".
    before = ok("web", make_container("apps-api-1"))
    after = ok("web", make_container("apps-api-2"), make_container("apps-worker-1"))
    assert diff_hosts(before, after, "web") == HostDiff(
        "web", added=("apps-api-2", "apps-worker-1"), removed=("apps-api-1",)
    )


@pytest.mark.parametrize(
    ("field", "changes", "old", "new"),
    [
        (
            "image",
            {"config_image": "ghcr.io/acme/api:1.1"},
            "ghcr.io/acme/api:1.0",
            "ghcr.io/acme/api:1.1",
        ),
        ("state", {"status": "exited", "running": False}, "running", "exited"),
        ("started", {"started": "2026-11-21T00:00:00Z"}, STARTED, "2026-11-21T00:00:00Z"),
        ("started", {"started": None}, STARTED, None),  # a type change, too
    ],
)
def test_one_field_changed(field: str, changes: dict[str, Any], old: Any, new: Any) -> None:
    after = ok("web", make_container(**changes))
    result = diff_hosts(ok("web", make_container()), after, "web")
    assert result == HostDiff("web", changed=(ContainerChange("apps-api-1", {field: (old, new)}),))
    assert not result.empty


def test_a_new_image_changes_id_and_digests_in_field_order() -> None:
    after = make_container(config_image="ghcr.io/acme/api:2.0", image_id=ID2)
    (change,) = diff_hosts(ok("web", make_container()), ok("web", after), "web").changed
    assert change == ContainerChange(
        "apps-api-1",
        {
            "digests": ([D1], [D2]),
            "image": ("ghcr.io/acme/api:1.0", "ghcr.io/acme/api:2.0"),
            "image_id": (ID1, ID2),
        },
    )
    assert list(change.changes) == ["digests", "image", "image_id"]


def test_digests_changed_on_the_same_image() -> None:
    # Same image ID, now also known by a mirror's digest; the order docker lists them in is noise.
    mirrored = (Image(ID1, (), (MIRROR, D1)),)
    reordered = (Image(ID1, (), (D1, MIRROR)),)
    before = ok("web", make_container())
    after = ok("web", make_container(), images=mirrored)
    assert diff_hosts(before, after, "web").changed == (
        ContainerChange("apps-api-1", {"digests": ([D1], [D1, MIRROR])}),
    )
    assert diff_hosts(after, ok("web", make_container(), images=reordered), "web").empty


def test_an_image_that_was_not_inspected_has_no_digests() -> None:
    before = ok("web", make_container())
    after = ok("web", make_container(), images=())
    assert diff_hosts(before, after, "web").changed == (
        ContainerChange("apps-api-1", {"digests": ([D1], [])}),
    )
    assert diff_hosts(after, after, "web").empty


def test_changed_containers_come_in_name_order() -> None:
    before = ok("web", make_container("web-2"), make_container("api-1"), make_container("db-1"))
    after = ok(
        "web",
        make_container("web-2", status="paused"),
        make_container("api-1", status="exited"),
        make_container("db-1"),
    )
    changed = diff_hosts(before, after, "web").changed
    assert changed == (
        ContainerChange("api-1", {"state": ("running", "exited")}),
        ContainerChange("web-2", {"state": ("running", "paused")}),
    )


def test_a_host_that_became_unreachable_reports_its_status_and_nothing_of_its_containers() -> None:
    """Its containers were not read, not removed: they were listed as removed, and on the way
    back as added, which a script reading the JSON took for a removal and a deployment."""
    before = ok("web", make_container("b"), make_container("a"))
    assert diff_hosts(before, failed("web"), "web") == HostDiff("web", status=("ok", "unreachable"))
    assert diff_hosts(failed("web"), before, "web") == HostDiff("web", status=("unreachable", "ok"))


def test_a_status_change_alone_is_a_change() -> None:
    result = diff_hosts(failed("web"), failed("web", HostStatus.AUTH_FAILED), "web")
    assert result == HostDiff("web", status=("unreachable", "auth-failed"))
    assert not result.empty
    assert diff_hosts(failed("web"), failed("web"), "web").empty


def test_a_host_in_one_snapshot_only() -> None:
    host = ok("web", make_container("a"))
    assert diff_hosts(host, None, "web") == HostDiff("web", status=("ok", None), removed=("a",))
    assert diff_hosts(None, host, "web") == HostDiff("web", status=(None, "ok"), added=("a",))
    assert diff_hosts(None, failed("web"), "web") == HostDiff("web", status=(None, "unreachable"))


def test_snapshots_are_compared_host_by_host_in_host_order() -> None:
    old = snapshot(
        1,
        ok("web", make_container("a")),
        ok("gone", make_container("g")),
        ok("db", make_container("d")),
    )
    new = snapshot(
        2,
        ok("new", make_container("n")),
        ok("db", make_container("d")),
        ok("web", make_container("a", status="exited")),
    )
    assert diff_snapshots(old, new) == [
        HostDiff("db"),
        HostDiff("gone", status=("ok", None), removed=("g",)),
        HostDiff("new", status=(None, "ok"), added=("n",)),
        HostDiff("web", changed=(ContainerChange("a", {"state": ("running", "exited")}),)),
    ]


def test_the_rendered_diff_lists_only_the_hosts_that_changed() -> None:
    old = snapshot(1, ok("db", make_container("d")), ok("web", make_container("a")))
    new = snapshot(2, ok("db", make_container("d")), failed("web"))
    hosts = diff_snapshots(old, new)
    assert diff_table(old, new, hosts).splitlines()[1:] == [
        "web:",
        "  status ok → unreachable",
    ]
    assert '"host": "db"' not in diff_json(old, new, hosts)
