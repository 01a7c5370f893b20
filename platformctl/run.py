"""One drift check, end to end: collect (or load) a snapshot, store it, diff it."""

from __future__ import annotations

from pathlib import Path

from platformctl import __version__
from platformctl.declared.model import DeclaredState, Module
from platformctl.differ import Report, diff, hosts_in_scope
from platformctl.errors import StoreError, UsageError


def check(
    declared: DeclaredState,
    scope: tuple[Module, ...],
    *,
    store_path: Path,
    snapshot: str | None = None,
    ssh_config: str | None = None,
    docker_command: str = "docker",
    jobs: int = 16,
    connect_timeout: float = 10.0,
    command_timeout: float = 60.0,
) -> Report:
    """Replay ``snapshot`` or collect the hosts ``scope`` needs, save, and judge ``scope``."""
    from platformctl.snapshots.store import Store

    if snapshot is not None and not store_path.exists():
        raise StoreError(f"no snapshot store at {store_path} (check --db); nothing to replay")
    store = Store.open(store_path)
    if snapshot is not None:
        snap = store.load(snapshot)
        return diff(
            scope,
            snap.hosts,
            snapshot_id=snap.id,
            taken_at=snap.taken_at,
            snapshot_status=str(snap.status),
            replay=True,
        )

    from platformctl.collector import make_factory
    from platformctl.collector.fanout import StderrProgress, collect
    from platformctl.collector.script import build_script
    from platformctl.snapshots.model import snapshot_status

    try:
        script = build_script(docker_command)
    except ValueError as exc:
        raise UsageError(f"--docker-command: {exc}") from None
    factory = make_factory(ssh_config, connect_timeout, command_timeout)
    hosts = hosts_in_scope(scope)
    progress = StderrProgress()
    try:
        collection = collect(hosts, factory, script, jobs=jobs, progress=progress)
    finally:
        progress.clear()
    status = snapshot_status(collection.hosts)
    snapshot_id = store.save(collection, __version__, status) if hosts else None
    return diff(
        scope,
        collection.hosts,
        snapshot_id=snapshot_id,
        taken_at=collection.taken_at,
        snapshot_status=str(status),
        replay=False,
    )
