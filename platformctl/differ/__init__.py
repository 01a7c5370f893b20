"""The differ: compares any snapshot with the declared state. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from platformctl.collector.model import HostResult
from platformctl.declared.model import Module
from platformctl.differ.compare import judge_all
from platformctl.differ.model import ModuleStatus, ModuleVerdict, Report


def hosts_in_scope(modules: Iterable[Module]) -> list[str]:
    """The hosts whose live state the given modules need, sorted."""
    return sorted({m.host for m in modules if m.needs_host and m.host})


def diff(
    modules: tuple[Module, ...],
    hosts: tuple[HostResult, ...],
    *,
    snapshot_id: int | None,
    taken_at: str,
    snapshot_status: str,
    replay: bool,
) -> Report:
    """Judge ``modules`` against the host results of one snapshot."""
    scope = set(hosts_in_scope(modules))
    by_host = {h.host: h for h in hosts}
    label = f"snapshot {snapshot_id}" if snapshot_id is not None else "the snapshot"
    verdicts = judge_all(modules, by_host, label)
    return Report(
        snapshot_id=snapshot_id,
        taken_at=taken_at,
        snapshot_status=snapshot_status,
        replay=replay,
        hosts=tuple(by_host[h] for h in sorted(scope) if h in by_host),
        modules=verdicts,
    )


__all__ = ["ModuleStatus", "ModuleVerdict", "Report", "diff", "hosts_in_scope"]
