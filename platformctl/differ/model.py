"""The differ's values: statuses, checks, per-module verdicts and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from platformctl.collector.model import HostResult
from platformctl.declared.model import Module


class ModuleStatus(StrEnum):
    """A module's verdict (SPEC §5.1)."""

    OK = "ok"
    DRIFT = "drift"
    MISSING = "missing"
    STOPPED = "stopped"
    UNVERIFIABLE = "unverifiable"
    UNREACHABLE = "unreachable"
    ERROR = "error"
    NOT_COLLECTED = "not-collected"
    INVALID = "invalid"
    SKIPPED = "skipped"


# Statuses that are a verdict on the module; the rest mean "we could not tell" (SPEC §5.2).
VERDICTS = frozenset(
    {
        ModuleStatus.OK,
        ModuleStatus.SKIPPED,
        ModuleStatus.DRIFT,
        ModuleStatus.MISSING,
        ModuleStatus.STOPPED,
    }
)
NOT_OK = frozenset({ModuleStatus.DRIFT, ModuleStatus.MISSING, ModuleStatus.STOPPED})


class CheckResult(StrEnum):
    """The outcome of one comparison."""

    OK = "ok"
    DRIFT = "drift"
    UNVERIFIABLE = "unverifiable"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One comparison: manifest-live, compose-live or manifest-compose."""

    check: str
    result: CheckResult
    changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    note: str | None = None
    container: str | None = None


@dataclass(frozen=True)
class LiveContainer:
    """The evidence for one live container of a module."""

    container: str
    image: str
    image_id: str
    digests: tuple[str, ...]
    state: str
    running: bool


@dataclass(frozen=True)
class ModuleVerdict:
    """Everything the report says about one module."""

    module: Module
    status: ModuleStatus
    reason: str
    live: tuple[LiveContainer, ...] = ()
    checks: tuple[Check, ...] = ()
    drift_since: str | None = None


@dataclass(frozen=True)
class Report:
    """The outcome of diffing one snapshot against the declared state."""

    snapshot_id: int | None
    taken_at: str
    snapshot_status: str
    replay: bool
    hosts: tuple[HostResult, ...]
    modules: tuple[ModuleVerdict, ...]

    def summary(self) -> dict[str, int]:
        """Count of modules per status, every status present."""
        counts = {str(s): 0 for s in ModuleStatus}
        for verdict in self.modules:
            counts[str(verdict.status)] += 1
        return counts

    @property
    def exit_code(self) -> int:
        """The exit code contract of SPEC §5.2 (usage errors, 1, are decided earlier)."""
        in_scope_hosts = {h.host for h in self.hosts}
        if in_scope_hosts and not any(h.reached for h in self.hosts):
            return 5
        statuses = {v.status for v in self.modules}
        if statuses - VERDICTS:
            return 8
        if statuses & NOT_OK:
            return 2
        return 0
