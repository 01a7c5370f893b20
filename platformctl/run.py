"""The library calls behind the commands: collect, check, history, snapshot housekeeping."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from platformctl import __version__
from platformctl.collector.connector import CollectOptions
from platformctl.declared.model import Module
from platformctl.differ import Report, diff, hosts_in_scope
from platformctl.errors import StoreError, UsageError

if TYPE_CHECKING:
    from platformctl.collector.model import Collection
    from platformctl.differ.history import ModuleHistory
    from platformctl.snapshots.store import Store

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str, option: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``2w`` or ``45s`` as a duration; :class:`UsageError` else."""
    m = _AGE.match(text)
    if not m:
        raise UsageError(f"{option}: expected a duration like 30d, 12h or 2w, got {text!r}")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def open_store(path: Path, must_exist: bool = False) -> Store:
    """Open the store; with ``must_exist`` a missing file is an error, not a new store."""
    from platformctl.snapshots.store import Store

    if must_exist and not path.exists():
        raise StoreError(f"no snapshot store at {path} (check --db)")
    return Store.open(path)


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
    store_path: Path,
    options: CollectOptions,
    snapshot: str | None = None,
) -> Report:
    """Replay ``snapshot`` or collect the hosts ``scope`` needs, save, judge, add drift ages."""
    from platformctl.snapshots.model import snapshot_status

    store = open_store(store_path, must_exist=snapshot is not None)
    if snapshot is not None:
        snap = store.load(snapshot)
        report = diff(
            scope,
            snap.hosts,
            snapshot_id=snap.id,
            taken_at=snap.taken_at,
            snapshot_status=str(snap.status),
            replay=True,
        )
    else:
        snapshot_id, collection = collect(hosts_in_scope(scope), store, options)
        report = diff(
            scope,
            collection.hosts,
            snapshot_id=snapshot_id,
            taken_at=collection.taken_at,
            snapshot_status=str(snapshot_status(collection.hosts)),
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
    needed = {m.host for m in modules if m.needs_host}
    states = store.states(
        p.state_id for host in needed for p in points.get(host or "", []) if p.state_id
    )
    return [
        module_history(m, points.get(m.host or "", []) if m.needs_host else [], states)
        for m in modules
    ]


def with_drift_since(report: Report, store: Store) -> Report:
    """Fill ``drift_since`` for every drifting, missing or stopped module of ``report``."""
    from platformctl.differ.history import drift_since
    from platformctl.differ.model import NOT_OK

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
    scope: tuple[Module, ...], store: Store, since: timedelta
) -> tuple[datetime, datetime, list[ModuleHistory]]:
    """Histories of ``scope`` for the window ``[now - since, now]``."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - since, now, histories(scope, store)
