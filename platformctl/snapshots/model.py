"""Stored snapshots as values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from platformctl.collector.model import HostResult, HostStatus


class SnapshotStatus(StrEnum):
    """How complete a snapshot is. An interrupted run stores nothing, so there is no
    "aborted" snapshot (docs/design.md, "Interrupts")."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    UNREACHABLE = "unreachable"


def snapshot_status(hosts: tuple[HostResult, ...]) -> SnapshotStatus:
    """``complete`` when every host was read, ``unreachable`` when none answered."""
    if all(h.status is HostStatus.OK for h in hosts):
        return SnapshotStatus.COMPLETE
    if all(h.status in (HostStatus.UNREACHABLE, HostStatus.AUTH_FAILED) for h in hosts):
        return SnapshotStatus.UNREACHABLE
    return SnapshotStatus.PARTIAL


@dataclass(frozen=True)
class Snapshot:
    """One collection as stored: every host result, reconstructed exactly."""

    id: int
    taken_at: datetime
    status: SnapshotStatus
    tool_version: str
    hosts: tuple[HostResult, ...]

    def host(self, name: str) -> HostResult | None:
        """The result for ``name``, or None when the host was not in this snapshot."""
        for h in self.hosts:
            if h.host == name:
                return h
        return None


@dataclass(frozen=True)
class SnapshotSummary:
    """A snapshot's row without its host states, for listings."""

    id: int
    taken_at: datetime
    status: SnapshotStatus
    tool_version: str
    hosts: int
    hosts_ok: int


@dataclass(frozen=True)
class ChangePoint:
    """A snapshot where a host's result changed (status or observed state) from the one before.

    Verdicts depend only on a host's status and state, so a module's status can change only at
    a change point: these rows alone reproduce every drift interval and ``drift_since``.
    """

    snapshot_id: int
    taken_at: datetime
    host: str
    status: HostStatus
    state_id: int | None
    before: datetime | None = None
    """When the host's previous snapshot was taken: the last in which its result was the one
    before this point (None for its first). A run's acceptance is judged there too, since an
    acceptance can expire while the state it covers stays the same."""


@dataclass(frozen=True)
class PruneResult:
    """What ``snapshots prune`` removed and what older history it had to keep."""

    cutoff: datetime
    removed_snapshots: int
    kept_older: int
    removed_states: int
