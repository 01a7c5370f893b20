"""The differ's values: statuses, checks, per-module verdicts and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from platformctl.collector.model import HostResult
from platformctl.declared.model import Module
from platformctl.snapshots.model import SnapshotStatus


class ModuleStatus(StrEnum):
    """A module's verdict (docs/design.md, "Statuses")."""

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


NOT_OK = frozenset({ModuleStatus.DRIFT, ModuleStatus.MISSING, ModuleStatus.STOPPED})
"""The statuses that are a verdict, and a bad one: these have a ``drift_since``."""


class CheckKind(StrEnum):
    """Which two of the three sources a check compares."""

    MANIFEST_LIVE = "manifest-live"
    COMPOSE_LIVE = "compose-live"
    MANIFEST_COMPOSE = "manifest-compose"


class CheckResult(StrEnum):
    """The outcome of one comparison."""

    OK = "ok"
    DRIFT = "drift"
    UNVERIFIABLE = "unverifiable"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One comparison: manifest-live, compose-live or manifest-compose."""

    check: CheckKind
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
    drift_since: datetime | None = None


@dataclass(frozen=True)
class Report:
    """The outcome of diffing one snapshot against the declared state."""

    snapshot_id: int | None
    taken_at: datetime
    snapshot_status: SnapshotStatus
    replay: bool
    hosts: tuple[HostResult, ...]
    modules: tuple[ModuleVerdict, ...]

    def summary(self) -> dict[ModuleStatus, int]:
        """Count of modules per status, every status present, in declaration order."""
        counts = dict.fromkeys(ModuleStatus, 0)
        for verdict in self.modules:
            counts[verdict.status] += 1
        return counts
