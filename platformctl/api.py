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
from dataclasses import dataclass, replace
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
    from platformctl.collector.model import Collection
    from platformctl.differ.history import ModuleHistory
    from platformctl.differ.outages import Outage
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


@dataclass(frozen=True)
class Overview:
    """What ``platformctl report`` draws: the newest snapshot judged, and the window's history.

    ``start`` is the requested window's start, or the oldest stored snapshot when the store
    begins later (before it nothing was observed, and an empty stretch would read as "ok").
    """

    requested: datetime
    start: datetime
    now: datetime
    snapshots_in_window: int
    current: Report
    histories: tuple[ModuleHistory, ...]
    outages: dict[str, tuple[Outage, ...]]
    """Every host in scope (even one never collected, with no outages) → its outages."""


def overview(
    scope: tuple[Module, ...], store: Store, window: timedelta, now: datetime | None = None
) -> Overview:
    """The current state (as ``drift-check --snapshot latest``) and the history of ``window``.

    Reads only the store: raises :class:`SnapshotNotFound` when it holds no snapshot.
    """
    from platformctl.differ.outages import host_outages

    now = now or utc_now()
    current = check(scope, store, CollectOptions(), snapshot="latest")
    points = store.change_points()
    oldest = min((p[0].taken_at for p in points.values() if p), default=now)
    requested = now - window
    start = max(requested, min(oldest, now))
    return Overview(
        requested=requested,
        start=start,
        now=now,
        snapshots_in_window=store.count_since(start),
        current=current,
        histories=tuple(histories(scope, store)),
        outages={h: host_outages(points.get(h, [])) for h in hosts_in_scope(scope)},
    )
