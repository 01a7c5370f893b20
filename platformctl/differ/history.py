"""Drift over time: intervals in which a module was not ``ok``, and ``drift_since``.

Pure: takes a host's change points and states (from the store) and judges the module against
each distinct state, against the *current* declared state. Snapshots in which the host could
not be collected neither extend nor break a run (docs/design.md, "History").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from platformctl.collector.model import HostResult, HostState, HostStatus
from platformctl.declared.model import Module
from platformctl.differ.compare import judge
from platformctl.differ.model import NOT_OK, ModuleStatus
from platformctl.snapshots.model import ChangePoint

# "The worst status seen" in an interval: an absent service beats a stopped one beats a
# wrong image beats one that cannot be confirmed.
SEVERITY = {
    ModuleStatus.UNVERIFIABLE: 1,
    ModuleStatus.DRIFT: 2,
    ModuleStatus.STOPPED: 3,
    ModuleStatus.MISSING: 4,
}


@dataclass(frozen=True)
class Interval:
    """A run of snapshots in which the module was not ``ok``; ``end`` None while open."""

    status: ModuleStatus
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class ModuleHistory:
    """A module's intervals and its status in the newest snapshot of its host."""

    module: Module
    status: ModuleStatus
    intervals: tuple[Interval, ...]

    def seconds_within(self, since: datetime, now: datetime) -> int:
        """Total seconds of not-ok time inside ``[since, now]``."""
        total = 0.0
        for interval in self.intervals:
            start = max(interval.start, since)
            end = min(interval.end or now, now)
            total += max(0.0, (end - start).total_seconds())
        return int(total)

    def within(self, since: datetime) -> tuple[Interval, ...]:
        """The intervals that reach into the window starting at ``since``."""
        return tuple(i for i in self.intervals if i.end is None or i.end > since)


def module_history(
    module: Module,
    points: Sequence[ChangePoint],
    states: Mapping[int, HostState],
) -> ModuleHistory:
    """Judge ``module`` at each of its host's change points and fold the verdicts into runs."""
    verdict_by_state: dict[int, ModuleStatus] = {}
    intervals: list[Interval] = []
    open_status: ModuleStatus | None = None
    open_start = datetime.min
    current = judge(module, None).status
    for point in points:
        state_id = point.state_id
        if point.status is not HostStatus.OK or state_id is None or state_id not in states:
            current = judge(module, HostResult(point.host, point.status)).status
            continue  # not collected: neither extends nor breaks a run
        status = verdict_by_state.get(state_id)
        if status is None:
            result = HostResult(point.host, HostStatus.OK, state=states[state_id])
            status = judge(module, result, explain=False).status
            verdict_by_state[state_id] = status
        current = status
        if status is ModuleStatus.OK:
            if open_status is not None:
                intervals.append(Interval(open_status, open_start, point.taken_at))
                open_status = None
            continue
        if open_status is None:
            open_status, open_start = status, point.taken_at
        elif SEVERITY.get(status, 0) > SEVERITY.get(open_status, 0):
            open_status = status
    if open_status is not None:
        intervals.append(Interval(open_status, open_start, None))
    return ModuleHistory(module, current, tuple(intervals))


def drift_since(history: ModuleHistory, status: ModuleStatus) -> datetime | None:
    """Start of the open run for a module whose status is drift, missing or stopped."""
    if status not in NOT_OK or not history.intervals:
        return None
    last = history.intervals[-1]
    return last.start if last.end is None else None
