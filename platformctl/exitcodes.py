"""The exit-code contract, decided here and nowhere else.

Cron jobs and CI read these codes, so every command's code is computed by one function of
this module from the values the command produced (docs/design.md, "Exit codes").
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, assert_never

if TYPE_CHECKING:
    from platformctl.collector.model import HostResult
    from platformctl.differ.model import ModuleStatus, Report
    from platformctl.differ.observe import Observation


class ExitCode(IntEnum):
    """What a platformctl process exits with."""

    OK = 0
    USAGE = 1
    DRIFT = 2
    UNREACHABLE = 5
    PARTIAL = 8
    INTERRUPTED = 130


class Verdict(IntEnum):
    """How a module's status counts for the exit code, worst last."""

    FINE = 0
    """ok, accepted, skipped: nothing to do (an accepted drift is intended, until it expires)."""
    NOT_OK = 1
    """drift, missing, stopped: a verdict, and a bad one."""
    UNKNOWN = 2
    """unverifiable, unreachable, error, not-collected, invalid: no verdict."""


def weigh(status: ModuleStatus) -> Verdict:
    """How one module status counts for the exit code."""
    from platformctl.differ.model import ModuleStatus

    match status:
        case ModuleStatus.OK | ModuleStatus.ACCEPTED | ModuleStatus.SKIPPED:
            return Verdict.FINE
        case ModuleStatus.DRIFT | ModuleStatus.MISSING | ModuleStatus.STOPPED:
            return Verdict.NOT_OK
        case (
            ModuleStatus.UNVERIFIABLE
            | ModuleStatus.UNREACHABLE
            | ModuleStatus.ERROR
            | ModuleStatus.NOT_COLLECTED
            | ModuleStatus.INVALID
        ):
            return Verdict.UNKNOWN
        case _:
            assert_never(status)


def for_modules(statuses: Iterable[ModuleStatus], hosts: Iterable[HostResult]) -> ExitCode:
    """``drift-check``: 5 when hosts were in scope and none answered; else 8 when some module
    has no verdict; else 2 when some module is not ok; else 0.

    A host a replayed snapshot does not hold (its modules ``not-collected``) was not tried, so
    the hosts it does hold being all unreachable is not "none answered": 8, not 5."""
    from platformctl.differ.model import ModuleStatus

    statuses, hosts = list(statuses), list(hosts)
    untried = ModuleStatus.NOT_COLLECTED in statuses
    if hosts and not untried and not any(h.reached for h in hosts):
        return ExitCode.UNREACHABLE
    worst = max((weigh(s) for s in statuses), default=Verdict.FINE)
    if worst is Verdict.UNKNOWN:
        return ExitCode.PARTIAL
    if worst is Verdict.NOT_OK:
        return ExitCode.DRIFT
    return ExitCode.OK


def for_report(report: Report) -> ExitCode:
    """``drift-check`` on a report (live or replayed)."""
    return for_modules((v.status for v in report.modules), report.hosts)


def for_collection(hosts: Iterable[HostResult]) -> ExitCode:
    """``collect``: 5 when no host answered, 8 when some host failed, 0 when all were read."""
    from platformctl.collector.model import HostStatus

    hosts = list(hosts)
    if hosts and not any(h.reached for h in hosts):
        return ExitCode.UNREACHABLE
    if any(h.status is not HostStatus.OK for h in hosts):
        return ExitCode.PARTIAL
    return ExitCode.OK


def for_observe(observations: Iterable[Observation]) -> ExitCode:
    """``observe``: 8 when some module in scope could not be observed (an external module
    does not count); else 2 when a change is pending (found and not written); else 0."""
    from platformctl.differ.observe import ObserveStatus

    observations = list(observations)
    if any(o.status is ObserveStatus.SKIPPED and o.counts for o in observations):
        return ExitCode.PARTIAL
    if any(o.status is ObserveStatus.CHANGED and not o.written for o in observations):
        return ExitCode.DRIFT
    return ExitCode.OK
