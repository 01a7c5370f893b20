"""What changed since the last notifying run: the content of a notification. Pure values.

For each host the caller gives a baseline: the host's status as the last run that notified
about it saw it, and the last state of it that was read by then. A module's status now is
compared with its status judged on that state against the same (current) declared state.
Modules on a host that could not be read now are left to that host's change, so a host going
down is one line rather than one per module, and a module that comes back as it was before the
outage is not news (docs/notify.md, "What a change is").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from platformctl.clock import from_iso, to_iso
from platformctl.collector.model import HostResult, HostStatus
from platformctl.declared.model import CheckedModule, ExternalModule, InvalidModule, Module
from platformctl.differ.compare import judge_all
from platformctl.differ.model import ModuleStatus, Report
from platformctl.exitcodes import Verdict, weigh


@dataclass(frozen=True)
class ModuleChange:
    """A module whose status differs from the one it had on its host's baseline; ``before`` is
    None when there is none (the first notifying run, or a host never read before)."""

    module: str
    host: str | None
    before: ModuleStatus | None
    after: ModuleStatus
    since: datetime
    """Start of the open not-ok interval (``drift_since``), else when this change was seen."""
    reason: str
    """The verdict's reason: declared → live, which digests differ, what is missing."""


@dataclass(frozen=True)
class HostChange:
    """A host whose collection status differs from the one the last notifying run saw."""

    host: str
    before: HostStatus | None
    after: HostStatus
    since: datetime
    reason: str
    modules: int
    """How many modules in scope are on this host (left unchecked while it is not ok)."""


Change = ModuleChange | HostChange


@dataclass(frozen=True)
class Baseline:
    """One host's last state read as the last notifying run told it, and when that sight
    was taken."""

    taken_at: datetime
    result: HostResult


def module_changes(
    report: Report,
    collected_before: Mapping[str, Baseline],
    had_snapshot: bool,
) -> list[ModuleChange]:
    """Modules of ``report`` whose status changed since their host's ``collected_before``.

    ``had_snapshot`` says whether any run notified before this one: modules whose verdict needs
    no host (invalid, external) can only change with the declared state, which is the same on
    both sides, so they are news only on the first notifying run.
    """
    before: dict[str, ModuleStatus | None] = {}
    needs_host: dict[str, list[Module]] = {}
    now_ok = {h.host for h in report.hosts if h.ok}
    for verdict in report.modules:
        module = verdict.module
        match module:
            case CheckedModule():
                if module.host not in now_ok:
                    continue  # the host's own change tells this
                if module.host in collected_before:
                    needs_host.setdefault(module.host, []).append(module)
                else:
                    before[module.name] = None
            case InvalidModule() | ExternalModule():
                before[module.name] = verdict.status if had_snapshot else None
            case _:
                assert_never(module)
    for host, modules in needs_host.items():
        base = collected_before[host]
        # Acceptances are applied at the previous run's time, so anything that depends on time
        # (an acceptance's expiry) is judged as it was then.
        previous = judge_all(modules, {host: base.result}, "", now=base.taken_at)
        before.update((v.module.name, v.status) for v in previous)

    out = []
    for verdict in report.modules:
        name = verdict.module.name
        if name not in before:
            continue
        was = before[name]
        if was == verdict.status or (was is None and weigh(verdict.status) is Verdict.FINE):
            continue
        out.append(
            ModuleChange(
                module=name,
                host=verdict.module.host,
                before=was,
                after=verdict.status,
                since=verdict.drift_since or report.taken_at,
                reason=verdict.reason,
            )
        )
    return out


def host_changes(report: Report, previous: Mapping[str, HostStatus]) -> list[HostChange]:
    """Hosts of ``report`` whose status differs from ``previous``; a host without a previous
    status is news only when it could not be read."""
    counts = Counter(v.module.host for v in report.modules if isinstance(v.module, CheckedModule))
    out = []
    for result in report.hosts:
        was = previous.get(result.host)
        if was == result.status or (was is None and result.ok):
            continue
        out.append(
            HostChange(
                host=result.host,
                before=was,
                after=result.status,
                since=report.taken_at,
                reason=result.reason or "",
                modules=counts[result.host],
            )
        )
    return out


def find_changes(
    report: Report,
    previous: Mapping[str, HostStatus],
    collected_before: Mapping[str, Baseline],
    had_snapshot: bool,
) -> tuple[Change, ...]:
    """Every change a notification reports for ``report``: hosts first, then modules."""
    return (
        *host_changes(report, previous),
        *module_changes(report, collected_before, had_snapshot),
    )


def to_json(change: Change) -> str:
    """One change as the JSON text the outbox keeps."""
    body: dict[str, Any]
    match change:
        case ModuleChange():
            body = {"kind": "module", "module": change.module, "host": change.host}
        case HostChange():
            body = {"kind": "host", "host": change.host, "modules": change.modules}
        case _:
            assert_never(change)
    body.update(
        before=None if change.before is None else str(change.before),
        after=str(change.after),
        since=to_iso(change.since),
        reason=change.reason,
    )
    return json.dumps(body, sort_keys=True)


def from_json(text: str) -> Change:
    """Rebuild a change written by :func:`to_json`; ``ValueError`` when it cannot be read
    (e.g. a status this version does not know)."""
    try:
        body = json.loads(text)
        before = body["before"]
        if body["kind"] == "module":
            return ModuleChange(
                module=str(body["module"]),
                host=None if body["host"] is None else str(body["host"]),
                before=None if before is None else ModuleStatus(before),
                after=ModuleStatus(body["after"]),
                since=from_iso(body["since"]),
                reason=str(body["reason"]),
            )
        if body["kind"] == "host":
            return HostChange(
                host=str(body["host"]),
                before=None if before is None else HostStatus(before),
                after=HostStatus(body["after"]),
                since=from_iso(body["since"]),
                reason=str(body["reason"]),
                modules=int(body["modules"]),
            )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        # AttributeError: a field of another type than this version writes (`"since": 5`).
        raise ValueError(f"unreadable change: {exc}") from None
    raise ValueError(f"unknown change kind {body.get('kind')!r}")
