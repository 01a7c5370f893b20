"""The differ's values: statuses, checks, per-module verdicts and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from platformctl.collector.model import HostResult
from platformctl.declared.model import Acceptance, Module
from platformctl.snapshots.model import SnapshotStatus


class ModuleStatus(StrEnum):
    """A module's verdict (docs/design.md, "Statuses")."""

    OK = "ok"
    ACCEPTED = "accepted"
    """Would be drift, missing, stopped or unverifiable; a valid, unexpired
    ``drift_accepted`` covers it."""
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

ACCEPTABLE = NOT_OK | {ModuleStatus.UNVERIFIABLE}
"""The statuses a ``drift_accepted`` can turn into ``accepted``: what the hosts showed, and it
differs from (or cannot confirm) the declaration. A host that gave no answer is not accepted."""


class CheckKind(StrEnum):
    """Which two of the three sources a check compares."""

    MANIFEST_LIVE = "manifest-live"
    COMPOSE_LIVE = "compose-live"
    MANIFEST_COMPOSE = "manifest-compose"


class CheckResult(StrEnum):
    """The outcome of one comparison."""

    OK = "ok"
    ACCEPTED = "accepted"
    """Would be drift, missing, stopped or unverifiable; a valid, unexpired
    ``drift_accepted`` covers it."""
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


# States in which a container that is not running runs again with nobody deploying anything:
# unpaused, or restarted by its restart policy. Beside a running replica it is judged too.
COMING_BACK = frozenset({"paused", "restarting"})


@dataclass(frozen=True)
class LiveContainer:
    """The evidence for one live container of a module."""

    container: str
    image: str
    image_id: str
    digests: tuple[str, ...]
    state: str
    running: bool

    @property
    def judged(self) -> bool:
        """Whether a verdict looks at it once some replica of its module runs."""
        return self.running or self.state in COMING_BACK


class AcceptanceOutcome(StrEnum):
    """What a module's ``drift_accepted`` did to its verdict (docs/design.md, "Accepted
    drift")."""

    APPLIED = "applied"
    """In force: the module is ``accepted``."""
    EXPIRED = "expired"
    """Past ``until``: the module has its own status again."""
    LIVE_CHANGED = "live-changed"
    """``digest`` given, and the live image is another one: the module has its own status."""
    NOT_NEEDED = "not-needed"
    """The module is ok: the acceptance is stale and should be removed (a warning)."""
    NOT_JUDGED = "not-judged"
    """The host gave no verdict (unreachable, error, not collected): nothing to accept."""


@dataclass(frozen=True)
class AcceptanceVerdict:
    """A module's acceptance, what became of it, and the status it was judged against."""

    acceptance: Acceptance
    outcome: AcceptanceOutcome
    status: ModuleStatus
    """The module's status as the hosts show it, without the acceptance."""


@dataclass(frozen=True)
class ModuleVerdict:
    """Everything the report says about one module."""

    module: Module
    status: ModuleStatus
    reason: str
    """Why the module has its status as the hosts show it (for ``accepted``: the drift)."""
    live: tuple[LiveContainer, ...] = ()
    checks: tuple[Check, ...] = ()
    drift_since: datetime | None = None
    acceptance: AcceptanceVerdict | None = None
    """Set when the manifest carries ``drift_accepted``."""
    warnings: tuple[str, ...] = ()
    """Things the operator should fix that do not change the status (a stale acceptance)."""

    @property
    def real_status(self) -> ModuleStatus:
        """The status without any acceptance: for ``accepted``, the status that was accepted."""
        return self.acceptance.status if self.acceptance is not None else self.status


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
