"""What a notification reports (docs/notify.md, "What a change is"), on values: which modules
and hosts changed since the baseline, with what they say, across several hosts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from platformctl.collector.model import HostResult, HostState, HostStatus
from platformctl.differ import diff
from platformctl.differ.changes import (
    Baseline,
    HostChange,
    ModuleChange,
    find_changes,
    from_json,
    to_json,
)
from platformctl.differ.model import ModuleStatus, Report
from platformctl.snapshots.model import snapshot_status
from tests.test_differ import IMAGES, make_container, make_module

BEFORE = datetime(2026, 11, 27, 9, tzinfo=UTC)
NOW = BEFORE + timedelta(hours=1)
API = make_module(host="alpha")
WORKER = make_module(name="worker", host="beta", compose_service="worker")
CRON = make_module(name="cron", host="beta", compose_service="cron")
RUNNING = {
    "api": make_container(),
    "worker": make_container(id="2" * 64, name="apps-worker-1", service="worker"),
    "cron": make_container(id="3" * 64, name="apps-cron-1", service="cron"),
}


def ok(host: str, *names: str) -> HostResult:
    return HostResult(
        host, HostStatus.OK, state=HostState(tuple(RUNNING[n] for n in names), IMAGES)
    )


def down(host: str) -> HostResult:
    return HostResult(host, HostStatus.UNREACHABLE, reason="connection refused")


def report(*hosts: HostResult, modules: tuple = (API, CRON, WORKER)) -> Report:
    return diff(
        modules,
        hosts,
        snapshot_id=2,
        taken_at=NOW,
        snapshot_status=snapshot_status(hosts),
        replay=False,
        now=NOW,
    )


def baseline(*hosts: HostResult) -> dict[str, Baseline]:
    return {h.host: Baseline(BEFORE, h) for h in hosts}


def test_a_module_on_a_host_that_went_down_does_not_hide_changes_on_other_hosts() -> None:
    # alpha is down (its module comes first), beta's cron is unchanged, its worker is gone.
    now = report(down("alpha"), ok("beta", "cron"))
    was = baseline(ok("alpha", "api"), ok("beta", "cron", "worker"))
    changes = find_changes(now, {"alpha": HostStatus.OK, "beta": HostStatus.OK}, was, True)
    assert changes == (
        HostChange("alpha", HostStatus.OK, HostStatus.UNREACHABLE, NOW, "connection refused", 1),
        ModuleChange(
            "worker",
            "beta",
            ModuleStatus.OK,
            ModuleStatus.MISSING,
            NOW,
            "no container of compose service 'worker' (project 'apps') on beta",
        ),
    )


def test_a_host_change_counts_the_modules_it_leaves_unchecked_and_a_recovery_says_no_reason() -> (
    None
):
    went = find_changes(
        report(ok("alpha", "api"), down("beta")), {"alpha": HostStatus.OK}, {}, True
    )
    assert went == (HostChange("beta", None, HostStatus.UNREACHABLE, NOW, "connection refused", 2),)
    back = report(ok("alpha", "api"), ok("beta", "cron", "worker"))
    previous = {"alpha": HostStatus.OK, "beta": HostStatus.UNREACHABLE}
    was = baseline(ok("alpha", "api"))
    assert find_changes(back, previous, was, True) == (
        HostChange("beta", HostStatus.UNREACHABLE, HostStatus.OK, NOW, "", 2),
    )


def test_the_outbox_text_is_stable_json() -> None:
    change = ModuleChange("worker", "beta", None, ModuleStatus.MISSING, NOW, "gone")
    assert to_json(change) == (
        '{"after": "missing", "before": null, "host": "beta", "kind": "module", '
        '"module": "worker", "reason": "gone", "since": "2026-11-27T10:00:00Z"}'
    )
    host = HostChange("beta", HostStatus.OK, HostStatus.ERROR, NOW, "docker: denied", 2)
    assert to_json(host) == (
        '{"after": "error", "before": "ok", "host": "beta", "kind": "host", "modules": 2, '
        '"reason": "docker: denied", "since": "2026-11-27T10:00:00Z"}'
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"kind": "module", "after": "missing"}', "unreadable change: 'before'"),
        ('{"kind": "disk", "before": null}', "unknown change kind 'disk'"),
        ("[1", "unreadable change: Expecting"),
    ],
)
def test_an_unreadable_outbox_entry_says_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(ValueError) as caught:
        from_json(text)
    assert str(caught.value).startswith(said)
    assert said.startswith("unreadable") or str(caught.value) == said
