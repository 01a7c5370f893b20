"""The library API behind the commands: what a Python user would import.

Each function takes values and resources (modules, an open :class:`Store`, collection
options) and returns values; rendering and exit codes are the caller's (``platformctl.output``
and ``platformctl.exitcodes``).

Example::

    from platformctl import api
    from platformctl.collector.connector import CollectOptions
    from platformctl.declared.manifests import find_root, load_declared
    from platformctl.snapshots.store import Store

    modules = load_declared(find_root()).modules
    report = api.check(modules, Store.open(Path("snapshots.db")), CollectOptions())
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from platformctl import __version__
from platformctl.clock import utc_now
from platformctl.collector.connector import CollectOptions
from platformctl.declared.model import CheckedModule, Module
from platformctl.differ import Report, diff, hosts_in_scope
from platformctl.differ.model import NOT_OK
from platformctl.errors import UsageError
from platformctl.snapshots.model import snapshot_status

if TYPE_CHECKING:
    from pathlib import Path

    from platformctl.collector.model import Collection
    from platformctl.differ.history import ModuleHistory
    from platformctl.differ.observe import ObserveReport
    from platformctl.snapshots.store import Store


def collect(
    hosts: Iterable[str], store: Store, options: CollectOptions
) -> tuple[int | None, Collection]:
    """Collect ``hosts`` in parallel and save one snapshot; returns its ID (None: no hosts)."""
    from platformctl.collector.connector import Connector
    from platformctl.collector.fanout import StderrProgress
    from platformctl.collector.fanout import collect as fan_out
    from platformctl.collector.script import build_script

    try:
        script = build_script(options.docker_command)
    except ValueError as exc:
        raise UsageError(f"--docker-command: {exc}") from None
    connector = Connector(options)
    names = sorted(set(hosts))
    progress = StderrProgress()
    try:
        collection = fan_out(names, connector, script, jobs=options.jobs, progress=progress)
    finally:
        progress.clear()
        connector.close()
    snapshot_id = store.save(collection, __version__) if names else None
    return snapshot_id, collection


def check(
    scope: tuple[Module, ...],
    store: Store,
    options: CollectOptions,
    snapshot: str | None = None,
) -> Report:
    """Replay ``snapshot`` or collect the hosts ``scope`` needs, save, judge, add drift ages."""
    if snapshot is not None:
        snap = store.load(snapshot)
        report = diff(
            scope,
            snap.hosts,
            snapshot_id=snap.id,
            taken_at=snap.taken_at,
            snapshot_status=snap.status,
            replay=True,
        )
    else:
        snapshot_id, collection = collect(hosts_in_scope(scope), store, options)
        report = diff(
            scope,
            collection.hosts,
            snapshot_id=snapshot_id,
            taken_at=collection.taken_at,
            snapshot_status=snapshot_status(collection.hosts),
            replay=False,
        )
    return with_drift_since(report, store)


def histories(
    modules: Iterable[Module], store: Store, until: int | None = None
) -> list[ModuleHistory]:
    """Each module's history over every stored snapshot (up to ``until``)."""
    from platformctl.differ.history import module_history

    modules = list(modules)
    points = store.change_points(until)
    needed = {m.host for m in modules if isinstance(m, CheckedModule)}
    states = store.states(p.state_id for host in needed for p in points.get(host, []) if p.state_id)
    return [
        module_history(m, points.get(m.host, []) if isinstance(m, CheckedModule) else [], states)
        for m in modules
    ]


def with_drift_since(report: Report, store: Store) -> Report:
    """Fill ``drift_since`` for every drifting, missing or stopped module of ``report``."""
    from platformctl.differ.history import drift_since

    if report.snapshot_id is None:
        return report
    drifting = [v for v in report.modules if v.status in NOT_OK]
    if not drifting:
        return report
    found = {
        h.module.name: drift_since(h, v.status)
        for h, v in zip(
            histories([v.module for v in drifting], store, report.snapshot_id),
            drifting,
            strict=True,
        )
    }
    verdicts = tuple(
        replace(v, drift_since=found[v.module.name]) if v.module.name in found else v
        for v in report.modules
    )
    return replace(report, modules=verdicts)


def drift_history(
    scope: tuple[Module, ...], store: Store, window: timedelta, now: datetime | None = None
) -> tuple[datetime, datetime, list[ModuleHistory]]:
    """Histories of ``scope`` for the window ``[now - window, now]``."""
    now = now or utc_now()
    return now - window, now, histories(scope, store)


def observe(
    scope: tuple[Module, ...],
    store: Store,
    options: CollectOptions,
    root: Path,
    snapshot: str | None = None,
    write: bool = False,
) -> ObserveReport:
    """Collect (or replay ``snapshot``) as :func:`check` does, then plan the new
    ``image_observed`` of every module whose live state is clear; with ``write``, write the
    plan (:func:`apply_observed`). Never touches a host.

    Manifests are read only inside ``root``; a manifest that cannot be edited safely is
    skipped with the reason.
    """
    from platformctl.declared.edit import EditProblem, plan_edit
    from platformctl.differ.observe import ObserveReport, ObserveStatus
    from platformctl.differ.observe import observe as observe_module

    report = check(scope, store, options, snapshot)
    results = []
    for verdict in report.modules:
        result = observe_module(verdict, report.taken_at)
        if result.status is ObserveStatus.CHANGED and result.observed is not None:
            try:
                result = replace(result, edit=plan_edit(root, verdict.module.path, result.observed))
            except EditProblem as exc:
                result = replace(result, status=ObserveStatus.SKIPPED, reason=str(exc))
        results.append(result)
    plan = ObserveReport(report=report, observations=tuple(results), write=False)
    return apply_observed(plan, root) if write else plan


def apply_observed(plan: ObserveReport, root: Path) -> ObserveReport:
    """Write every change ``plan`` holds, atomically, inside ``root``.

    A manifest that changed on disk since the plan read it is not overwritten: that module
    becomes skipped, saying so, as does one that cannot be written.
    """
    from platformctl.declared.edit import EditProblem, write_edit
    from platformctl.differ.observe import ObserveStatus

    results = []
    for result in plan.observations:
        if result.edit is not None and not result.written:
            try:
                write_edit(root, result.edit)
                result = replace(result, written=True)
            except EditProblem as exc:
                result = replace(result, status=ObserveStatus.SKIPPED, reason=str(exc), edit=None)
        results.append(result)
    return replace(plan, observations=tuple(results), write=True)
