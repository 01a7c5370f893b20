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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from platformctl import __version__
from platformctl.clock import utc_now
from platformctl.collector.connector import CollectOptions
from platformctl.declared.model import CheckedModule, Module, hosts_in_scope
from platformctl.errors import UsageError

# The differ, the store's writer and the renderers are imported where used: a collection
# starts before them and they are imported while hosts answer (docs/design.md, "Start-up").
if TYPE_CHECKING:
    from pathlib import Path

    from platformctl.collector.model import Collection, HostResult
    from platformctl.differ import Report
    from platformctl.differ.changes import Change
    from platformctl.differ.history import ModuleHistory
    from platformctl.differ.observe import ObserveReport
    from platformctl.differ.outages import Outage
    from platformctl.snapshots.store import Store


class Collecting:
    """A collection that started when made and runs in the background until :meth:`wait`:
    the caller prepares the rest of the run while hosts answer (docs/design.md, "Start-up").
    With ``hosts=None`` it is open-ended: hosts are :meth:`add`-ed as the manifests naming
    them are read, and :meth:`finish` says which the run needs. :meth:`close` it in any case.
    ``store``, where it will be saved: what it holds as the collection begins tells, when it
    is saved, which runs begun later saved first (docs/design.md, "Store"); without it, none
    is looked for.
    """

    def __init__(
        self, hosts: Iterable[str] | None, options: CollectOptions, store: Store | None = None
    ) -> None:
        from platformctl.collector.connector import Connector
        from platformctl.collector.fanout import Fanout, StderrProgress
        from platformctl.collector.script import build_script

        try:
            script = build_script(options.docker_command)
        except ValueError as exc:
            raise UsageError(f"--docker-command: {exc}") from None
        self._connector = Connector(options)
        self._closed = False
        self._progress = StderrProgress()
        self.begun_after = None if store is None else store.newest_id()
        self._fanout = Fanout(hosts, self._connector, script, jobs=options.jobs)

    def add(self, host: str) -> None:
        """Start collecting ``host`` now (open-ended collections)."""
        self._fanout.add(host)

    def finish(self, hosts: Iterable[str]) -> None:
        """The hosts the run needs (open-ended collections): only they are waited for."""
        self._fanout.finish(hosts)

    def warm_up(self) -> None:
        """Import, while hosts answer, what the end of the run needs: paramiko (every SSH host
        needs it at once, so one import now spares them queueing on it later) and the
        differ."""
        from platformctl.collector.connector import LOCAL_HOSTS
        from platformctl.collector.paramiko_import import import_paramiko

        if any(name not in LOCAL_HOSTS for name in self._fanout.names):
            import_paramiko()
        import platformctl.differ  # noqa: F401

    def wait(self) -> Collection:
        """Every host's result, once all are in."""
        return self._fanout.wait(self._progress)

    def close(self) -> None:
        """Clear the progress line and close shared connections (also when interrupted); a
        second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._fanout.cancel()  # an open-ended collection never finished: no more hosts
        self._progress.clear()
        self._connector.close()


def collect(
    hosts: Iterable[str],
    store: Store,
    options: CollectOptions,
    while_waiting: Callable[[], object] | None = None,
    started: Collecting | None = None,
) -> tuple[int | None, Collection]:
    """Collect ``hosts`` in parallel and save one snapshot; returns its ID (None: no hosts).
    ``while_waiting`` is called after the collection has started. ``started``: an open-ended
    collection already under way, finished with ``hosts`` (and closed here)."""
    if started is None:
        collecting = Collecting(hosts, options, store)
    else:
        collecting = started
        collecting.finish(hosts)
    try:
        collecting.warm_up()
        if while_waiting is not None:
            while_waiting()
        collection = collecting.wait()
    finally:
        collecting.close()
    snapshot_id = (
        store.save(collection, __version__, begun_after=collecting.begun_after)
        if collection.hosts
        else None
    )
    return snapshot_id, collection


def check(
    scope: tuple[Module, ...],
    store: Store,
    options: CollectOptions,
    snapshot: str | None = None,
    now: datetime | None = None,
    while_waiting: Callable[[], object] | None = None,
    started: Collecting | None = None,
) -> Report:
    """Replay ``snapshot`` or collect the hosts ``scope`` needs, save, judge, add drift ages.

    Acceptances (``drift_accepted``) are judged at ``now`` (default: the current time), for a
    replay too: a replay says how that state is judged today. ``while_waiting`` is called
    once hosts are being collected (the CLI imports its renderer there). ``started``: an
    open-ended collection begun while the manifests were read (see :func:`collect`).
    """
    now = now or utc_now()
    if snapshot is not None:
        from platformctl.differ import diff

        snap = store.load(snapshot)
        report = diff(
            scope,
            snap.hosts,
            snapshot_id=snap.id,
            taken_at=snap.taken_at,
            snapshot_status=snap.status,
            replay=True,
            now=now,
        )
    else:
        snapshot_id, collection = collect(
            hosts_in_scope(scope), store, options, while_waiting, started
        )
        from platformctl.differ import diff  # imported while hosts answered
        from platformctl.snapshots.model import snapshot_status

        report = diff(
            scope,
            collection.hosts,
            snapshot_id=snapshot_id,
            taken_at=collection.taken_at,
            snapshot_status=snapshot_status(collection.hosts),
            replay=False,
            now=now,
        )
    return with_drift_since(report, store, now)


def histories(
    modules: Iterable[Module], store: Store, until: int | None = None, now: datetime | None = None
) -> list[ModuleHistory]:
    """Each module's history over every stored snapshot (up to ``until``); acceptances that
    are still open are judged at ``now`` (default: the current time)."""
    from platformctl.differ.history import module_history

    modules = list(modules)
    now = now or utc_now()
    points = store.change_points(until)
    needed = {m.host for m in modules if isinstance(m, CheckedModule)}
    states = store.states(p.state_id for host in needed for p in points.get(host, []) if p.state_id)
    return [
        module_history(
            m, points.get(m.host, []) if isinstance(m, CheckedModule) else [], states, now=now
        )
        for m in modules
    ]


def with_drift_since(report: Report, store: Store, now: datetime | None = None) -> Report:
    """Fill ``drift_since`` for every drifting, missing or stopped module of ``report``
    (accepted ones included: an acceptance does not change since when the hosts drifted)."""
    from platformctl.differ.history import drift_since
    from platformctl.differ.model import NOT_OK

    if report.snapshot_id is None:
        return report
    drifting = [v for v in report.modules if v.real_status in NOT_OK]
    if not drifting:
        return report
    # By verdict, not by module name: a manifest that reuses a name is an invalid module of
    # that name, and must not take the valid one's age.
    found = {
        id(v): _no_later(drift_since(h, v.real_status), report.taken_at, store)
        for h, v in zip(
            histories([v.module for v in drifting], store, report.snapshot_id, now),
            drifting,
            strict=True,
        )
    }
    verdicts = tuple(
        replace(v, drift_since=found[id(v)]) if id(v) in found else v for v in report.modules
    )
    return replace(report, modules=verdicts)


def _no_later(since: datetime | None, taken_at: datetime, store: Store) -> datetime | None:
    """When a drift a snapshot shows began: at the latest when the snapshot was taken. A run
    that saved after one begun later is off its hosts' timelines (docs/design.md, "Store"),
    whose history may then say fine, or drifting only since the later run. A store from
    before that (schema v3 and older, read as it is) answers as it always did."""
    if store.version < 4:
        return since
    return taken_at if since is None or since > taken_at else since


def drift_history(
    scope: tuple[Module, ...], store: Store, window: timedelta, now: datetime | None = None
) -> tuple[datetime, datetime, list[ModuleHistory]]:
    """Histories of ``scope`` for the window ``[now - window, now]``."""
    now = now or utc_now()
    return now - window, now, histories(scope, store, now=now)


class Channel(Protocol):
    """Where notifications go (``output.notify.AppriseChannel``; tests pass their own)."""

    destination: str
    """The key its undelivered changes are kept under: never a credential."""
    label: str
    """What to call it in an error line: scheme and host, no credentials."""

    def send(self, changes: Sequence[Change]) -> None:
        """Deliver one message; raise :class:`DeliveryError` when it was not delivered."""


@dataclass(frozen=True)
class Undelivered:
    """A channel that did not take its message; its changes wait in the outbox."""

    label: str
    changes: int
    problem: str


def changes(report: Report, store: Store) -> tuple[Change, ...]:
    """What changed in ``report`` since the last run that notified about each of its hosts
    (docs/notify.md, "What a change is"); nothing for a replay or a run that stored no
    snapshot. Reads the store, writes nothing: :func:`notify` moves the marks."""
    if report.replay or report.snapshot_id is None:
        return ()
    return _told(report, report.snapshot_id, store).changes


@dataclass(frozen=True)
class _Told:
    """What a notifying run tells, and the mark (snapshot ID, taken_at) each host gets."""

    changes: tuple[Change, ...]
    marks: dict[str, tuple[int, datetime]]


def _whole(report: Report, declared: Sequence[Module], store: Store) -> Report:
    """``report`` of a run for some modules, judged again for every module ``declared``: a
    host's mark covers all its modules, and the run read the whole host, so what it tells is
    about all of them (docs/notify.md)."""
    from platformctl.differ import diff

    whole = diff(
        tuple(declared),
        report.hosts,
        snapshot_id=report.snapshot_id,
        taken_at=report.taken_at,
        snapshot_status=report.snapshot_status,
        replay=False,
        now=utc_now(),
    )
    return with_drift_since(whole, store)


def _told(report: Report, sid: int, store: Store) -> _Told:
    """Each host of ``report`` (snapshot ``sid``) as of its timeline (docs/design.md, "Store").

    A host whose row here is on its timeline is told as this run saw it, unless this row or
    a later one was told already (a run that saved after this one notified first). A host
    whose row is superseded (a run begun later saved it first) is told as its newest timeline
    row below this snapshot shows it: judged at that row's time, with its history, and marked
    there; unless the mark is there or past it already. Marks so stay on the timelines, where
    IDs are in the order the runs began."""
    from platformctl.differ import diff
    from platformctl.snapshots.model import snapshot_status

    marks = store.notified()

    def told(host: str, row: int) -> bool:
        return host in marks and marks[host][0] >= row

    stale = store.superseded(sid)
    heads = {h: head for h, head in store.newest_below(stale, sid).items() if not told(h, head[0])}
    own = {h.host for h in report.hosts if h.host not in stale and not told(h.host, sid)}

    def of(hosts: Iterable[str], source: Report) -> Report:
        keep = set(hosts)
        return replace(
            source,
            hosts=tuple(h for h in source.hosts if h.host in keep),
            modules=tuple(
                v
                for v in source.modules
                if not isinstance(v.module, CheckedModule) or v.module.host in keep
            ),
        )

    # A host told as not read (down, an error), whose last read since its mark was not told
    # (a run without notifications saw it; with no mark, any earlier read): that read is told
    # first, judged at its time. Else the host's mark would move past it, and the next run
    # that reads the host would compare its modules with that untold read: a drift seen only
    # by it would never be told.
    now = {r.host: r for r in report.hosts}
    told_as = {h: (sid, now[h]) for h in own} | {h: (r, res) for h, (r, _, res) in heads.items()}
    gaps = {}
    for host, (row, result) in told_as.items():
        if not result.ok:
            read = store.newest_read(host, marks[host][0] if host in marks else 0, row)
            if read is not None:
                gaps[host] = read
    found: list[Change] = []
    first = not marks  # no run notified before: what needs no host is news once

    def judge(rows: dict[str, tuple[int, datetime, HostResult]], since: _Marks) -> None:
        by_row: dict[tuple[int, datetime], list[HostResult]] = {}
        for row, taken_at, result in rows.values():
            by_row.setdefault((row, taken_at), []).append(result)
        for (row, taken_at), results in sorted(by_row.items()):
            hosts = {r.host for r in results}
            scope = tuple(
                v.module
                for v in report.modules
                if isinstance(v.module, CheckedModule) and v.module.host in hosts
            )
            seen = diff(
                scope,
                tuple(results),
                snapshot_id=row,
                taken_at=taken_at,
                snapshot_status=snapshot_status(tuple(results)),
                replay=False,
                now=taken_at,
            )
            seen = with_drift_since(seen, store, taken_at)
            found.extend(_changes(seen, row, store, since, first))

    judge(gaps, marks)
    # The gaps' reads are told: the changes after them are from them.
    since_read = {**marks, **{h: (row, at) for h, (row, at, _) in gaps.items()}}
    judge(heads, since_read)
    found.extend(_changes(of(own, report), sid, store, since_read, first))
    new_marks = dict.fromkeys(own, (sid, report.taken_at))
    new_marks.update((h, (row, at)) for h, (row, at, _) in heads.items())
    return _Told(tuple(found), new_marks)


_Marks = dict[str, tuple[int, datetime]]


def _changes(
    report: Report, sid: int, store: Store, marks: _Marks, first: bool
) -> tuple[Change, ...]:
    """The changes of ``report`` (of snapshot ``sid``, hosts already chosen by
    :func:`_told`) against each host's mark in ``marks``."""
    from platformctl.collector.model import HostResult, HostStatus
    from platformctl.differ.changes import Baseline, find_changes

    marked = {h.host: marks[h.host] for h in report.hosts if h.host in marks}
    points = store.change_points(sid - 1) if marked else {}
    previous: dict[str, HostStatus] = {}
    collected: dict[str, tuple[datetime, int]] = {}
    for host, (mark_id, mark_at) in marked.items():
        # A change point marks every change of a host's status or state, so the last one at or
        # before the mark is the host as that run saw it, and the last collected one is the
        # state its modules were judged on then.
        upto = [cp for cp in points.get(host, []) if cp.snapshot_id <= mark_id]
        if upto:
            previous[host] = upto[-1].status
        read = [cp for cp in upto if cp.status is HostStatus.OK and cp.state_id is not None]
        if read and read[-1].state_id is not None:
            collected[host] = (mark_at, read[-1].state_id)
    states = store.states(state_id for _, state_id in collected.values())
    baselines = {
        host: Baseline(at, HostResult(host, HostStatus.OK, state=states[state_id]))
        for host, (at, state_id) in collected.items()
        if state_id in states
    }
    return find_changes(report, previous, baselines, had_snapshot=not first)


def notify(
    report: Report,
    store: Store,
    channels: Sequence[Channel],
    declared: Sequence[Module] = (),
) -> list[Undelivered]:
    """Send each channel one message with this run's changes and whatever it missed before.

    The changes are put in the outbox first, for every channel, and this snapshot becomes the
    one the next notifying run compares its hosts with; entries leave the outbox only once a
    channel took them, so a failed or interrupted delivery loses nothing: the next run sends
    them again (docs/notify.md, "The outbox"). Replays never notify. ``declared``: every
    module of the repository, when the run was for some of them.
    """
    from platformctl.differ.changes import from_json, to_json
    from platformctl.errors import DeliveryError

    sid = report.snapshot_id
    if report.replay or sid is None or not channels:
        return []
    if len(declared) > len(report.modules):
        report = _whole(report, declared, store)
    # Reading the marks and moving them in one transaction: a notifying run that overlaps
    # this one waits, then compares with what this one told, so no change is sent twice.
    with store.transaction("notify"):
        told = _told(report, sid, store)
        store.enqueue(
            (c.destination for c in channels),
            [to_json(c) for c in told.changes],
            report.taken_at,
            told.marks,
        )
    failures = []
    done: set[str] = set()
    for channel in channels:
        if channel.destination in done:
            continue  # the same URL given twice gets one message
        done.add(channel.destination)
        ids, pending = [], []
        for entry_id, body in store.pending(channel.destination):
            try:
                pending.append(from_json(body))
            except ValueError:
                continue  # written by another platformctl version: left for it
            ids.append(entry_id)
        if not pending:
            continue
        try:
            channel.send(pending)
        except DeliveryError as exc:
            failures.append(Undelivered(channel.label, len(pending), str(exc)))
            continue
        store.delivered(ids)
    return failures


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
    written: dict[Path, tuple[str, bytes]] = {}  # file → the module that wrote it, and what
    for result in plan.observations:
        edit = result.edit
        if edit is not None and not result.written:
            earlier = written.get(edit.real)
            try:
                if earlier is None:
                    write_edit(root, edit)
                    written[edit.real] = (result.module.name, edit.after)
                elif earlier[1] != edit.after:
                    # Two modules read from one file (a link): the plan of the second was
                    # made from the text the first has just replaced.
                    raise EditProblem(
                        f"{edit.path}: the same file as module {earlier[0]}'s, written just "
                        "now with another value; not written (run observe again)"
                    )
                result = replace(result, written=True)
            except EditProblem as exc:
                result = replace(result, status=ObserveStatus.SKIPPED, reason=str(exc), edit=None)
        results.append(result)
    return replace(plan, observations=tuple(results), write=True)


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
    current = check(scope, store, CollectOptions(), snapshot="latest", now=now)
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
        histories=tuple(histories(scope, store, now=now)),
        outages={h: host_outages(points.get(h, [])) for h in hosts_in_scope(scope)},
    )
