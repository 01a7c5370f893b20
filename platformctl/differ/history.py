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
from platformctl.declared.model import CheckedModule, Module
from platformctl.differ.accepted import accept, outcome_at
from platformctl.differ.compare import judge
from platformctl.differ.model import NOT_OK, AcceptanceOutcome, ModuleStatus, ModuleVerdict
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
    accepted: bool = False
    """The module's ``drift_accepted`` covered every snapshot of the run (and, while the run
    is open, still does): what happened on the hosts is kept, and marked as intended."""


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
    *,
    now: datetime,
) -> ModuleHistory:
    """Judge ``module`` at each of its host's change points and fold the verdicts into runs.

    The module's acceptance is judged at each snapshot's own time to mark a run accepted: at
    each of the run's change points, and where each of its states was last seen (the next
    point's ``before``: an acceptance can expire while a state stays), and at ``now`` for an
    open run and for the current status.
    """
    acceptance = module.accepted if isinstance(module, CheckedModule) else None
    verdict_by_state: dict[int, ModuleVerdict] = {}
    intervals: list[Interval] = []
    open_status: ModuleStatus | None = None
    open_start = datetime.min
    open_accepted = False
    current = last_seen = judge(module, None)
    held: ModuleVerdict | None = None  # the open run's collected verdict, until the next point
    for point in points:
        if acceptance is not None and held is not None and point.before is not None:
            ended = outcome_at(acceptance, held.status, held.live, point.before)
            open_accepted = open_accepted and ended is AcceptanceOutcome.APPLIED
        held = None
        state_id = point.state_id
        if point.status is not HostStatus.OK or state_id is None or state_id not in states:
            current = judge(module, HostResult(point.host, point.status))
            continue  # not collected: neither extends nor breaks a run
        verdict = verdict_by_state.get(state_id)
        if verdict is None:
            result = HostResult(point.host, HostStatus.OK, state=states[state_id])
            verdict = judge(module, result, explain=False)
            verdict_by_state[state_id] = verdict
        current = last_seen = verdict
        status = verdict.status
        if status is ModuleStatus.OK:
            if open_status is not None:
                intervals.append(Interval(open_status, open_start, point.taken_at, open_accepted))
                open_status = None
            continue
        covered = acceptance is not None and (
            outcome_at(acceptance, status, verdict.live, point.taken_at)
            is AcceptanceOutcome.APPLIED
        )
        held = verdict
        if open_status is None:
            open_status, open_start, open_accepted = status, point.taken_at, covered
            continue
        open_accepted = open_accepted and covered
        if SEVERITY.get(status, 0) > SEVERITY.get(open_status, 0):
            open_status = status
    if open_status is not None:
        # The run's last collected state is the one still on the host, whatever came after.
        still = open_accepted and accept(last_seen, now).status is ModuleStatus.ACCEPTED
        intervals.append(Interval(open_status, open_start, None, still))
    return ModuleHistory(module, accept(current, now).status, tuple(intervals))


def drift_since(history: ModuleHistory, status: ModuleStatus) -> datetime | None:
    """Start of the open run for a module whose status is drift, missing or stopped (for an
    accepted module: pass the status that was accepted, ``ModuleVerdict.real_status``)."""
    if status not in NOT_OK or not history.intervals:
        return None
    last = history.intervals[-1]
    return last.start if last.end is None else None
