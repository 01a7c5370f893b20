"""The differ: compares any snapshot with the declared state. Pure values in, values out.

``compare`` judges one module against one host result, ``history`` folds verdicts over time
into intervals and ``drift_since``, ``snapshot_diff`` says what changed on the hosts between
two snapshots, ``fields`` explains a difference field by field (deepdiff).
"""

from __future__ import annotations

from datetime import datetime

from platformctl.collector.model import HostResult
from platformctl.declared.model import Module, hosts_in_scope
from platformctl.differ.compare import judge_all
from platformctl.differ.model import ModuleStatus, ModuleVerdict, Report
from platformctl.snapshots.model import SnapshotStatus


def diff(
    modules: tuple[Module, ...],
    hosts: tuple[HostResult, ...],
    *,
    snapshot_id: int | None,
    taken_at: datetime,
    snapshot_status: SnapshotStatus,
    replay: bool,
    now: datetime,
) -> Report:
    """Judge ``modules`` against the host results of one snapshot; acceptances
    (``drift_accepted``) are judged at ``now``, the time of the run, also for a replay."""
    scope = set(hosts_in_scope(modules))
    by_host = {h.host: h for h in hosts}
    label = f"snapshot {snapshot_id}" if snapshot_id is not None else "the snapshot"
    verdicts = judge_all(modules, by_host, label, now=now)
    return Report(
        snapshot_id=snapshot_id,
        taken_at=taken_at,
        snapshot_status=snapshot_status,
        replay=replay,
        hosts=tuple(by_host[h] for h in sorted(scope) if h in by_host),
        modules=verdicts,
    )


__all__ = ["ModuleStatus", "ModuleVerdict", "Report", "diff", "hosts_in_scope"]
