"""The command line: parse options, build objects, call one library function, render, exit.

Errors become one line on stderr and an exit code; never a traceback. Click's own usage errors
exit 2 by default, but 2 means drift here, so every usage error exits 1 (docs/design.md,
"Exit codes").
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import math
import os
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from platformctl import __version__
from platformctl.collector.connector import CollectOptions
from platformctl.errors import PlatformctlError, UsageError
from platformctl.exitcodes import ExitCode
from platformctl.paths import output_path, replace_file, user_path

if TYPE_CHECKING:
    from platformctl import api
    from platformctl.api import Channel
    from platformctl.declared.model import Module
    from platformctl.differ.model import Report
    from platformctl.snapshots.store import Store

F = TypeVar("F", bound=Callable[..., Any])


class Age(click.ParamType):
    """A duration such as ``90d``, ``12h``, ``30m``, ``2w`` or ``45s``, as a ``timedelta``."""

    name = "age"
    # At most 30 digits: already far past LONGEST, and Python refuses to read numbers of
    # thousands of digits (a traceback, not a usage error).
    _PATTERN = re.compile(r"^\s*([0-9]{1,30})\s*([smhdw])\s*$")
    _UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    # Longer reaches back past year 1, where dates end: a thousand years is already all of
    # any store's history, and `--since 999999d` means that.
    LONGEST = timedelta(days=365_250)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        """Parse ``value``; a bad one is a usage error naming the option."""
        if isinstance(value, timedelta):
            return value
        m = self._PATTERN.match(str(value))
        if not m:
            option = param.opts[0] if param and param.opts else "duration"
            raise UsageError(f"{option}: expected a duration like 30d, 12h or 2w, got {value!r}")
        seconds = int(m.group(1)) * self._UNITS[m.group(2)]
        return timedelta(seconds=min(seconds, self.LONGEST // timedelta(seconds=1)))


class Seconds(click.FloatRange):
    """A number of seconds from 0.1 to a day: ``nan`` passes a bare ``FloatRange`` (every
    comparison with it is false), and ``nan`` or ``1e10`` then failed every host with a
    Python error (a socket timeout past what the platform's time holds)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0.1, max=86_400)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """Parse ``value``; ``nan`` or ``inf`` is a usage error naming the option."""
        seconds = float(super().convert(value, param, ctx))
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        return seconds


def root_option(f: F) -> F:
    """``--root``: the platform repository (env ``PLATFORMCTL_ROOT``)."""
    return click.option(
        "--root",
        envvar="PLATFORMCTL_ROOT",
        metavar="DIR",
        help="Platform repository root (default: nearest folder above with modules/).",
    )(f)


def ignored_root_option(f: F) -> F:
    """``--root`` where it has no use (the store alone answers): still accepted, so a script
    can pass the same options to every subcommand, but hidden from the help."""
    return click.option("--root", envvar="PLATFORMCTL_ROOT", metavar="DIR", hidden=True)(f)


def since_option(f: F) -> F:
    """``--since AGE``: the window a history-reading command covers (default 30 days)."""
    return click.option(
        "--since",
        default="30d",
        type=Age(),
        show_default=True,
        metavar="AGE",
        help="Window to report (e.g. 30d, 12h, 2w).",
    )(f)


def db_option(f: F) -> F:
    """``--db``: the snapshot store (env ``PLATFORMCTL_DB``)."""
    return click.option(
        "--db",
        envvar="PLATFORMCTL_DB",
        metavar="PATH",
        help="Snapshot store (default: $XDG_STATE_HOME/platformctl/snapshots.db).",
    )(f)


def collect_options(f: F) -> F:
    """The options that shape a live collection, handed to the command as ``options``."""

    @functools.wraps(f)
    def wrapper(
        *args: Any,
        ssh_config: str | None,
        docker_command: str,
        jobs: int,
        connect_timeout: float,
        command_timeout: float,
        **kwargs: Any,
    ) -> Any:
        options = CollectOptions(ssh_config, docker_command, jobs, connect_timeout, command_timeout)
        return f(*args, options=options, **kwargs)

    decorators = [
        click.option("--ssh-config", metavar="PATH", help="ssh config (default ~/.ssh/config)."),
        click.option(
            "--docker-command",
            envvar="PLATFORMCTL_DOCKER_COMMAND",
            default=CollectOptions.docker_command,
            show_default=True,
            metavar="CMD",
            help="How to run docker on the hosts, e.g. 'sudo -n docker'.",
        ),
        click.option(
            "--jobs",
            type=click.IntRange(1, 512),
            default=CollectOptions.jobs,
            show_default=True,
            help="Hosts collected in parallel.",
        ),
        click.option(
            "--connect-timeout",
            type=Seconds(),
            default=CollectOptions.connect_timeout,
            show_default=True,
            metavar="S",
            help="Seconds to connect and handshake.",
        ),
        click.option(
            "--command-timeout",
            type=Seconds(),
            default=CollectOptions.command_timeout,
            show_default=True,
            metavar="S",
            help="Seconds for the remote command.",
        ),
    ]
    command: Any = wrapper
    for decorator in reversed(decorators):
        command = decorator(command)
    return cast(F, command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="platformctl")
def cli() -> None:
    """Compare what runs on your Docker hosts with what your platform repository declares."""


def alert_options(f: F) -> F:
    """``--notify URL`` (repeatable; env ``PLATFORMCTL_NOTIFY``, space-separated) and
    ``--metrics-file PATH``: what a scheduled run tells the outside (docs/notify.md)."""
    f = click.option(
        "--metrics-file",
        metavar="PATH",
        type=click.Path(dir_okay=False),
        help="Write Prometheus metrics here (textfile collector format), atomically.",
    )(f)
    return click.option(
        "--notify",
        "notify_urls",
        multiple=True,
        envvar="PLATFORMCTL_NOTIFY",
        metavar="URL",
        help="Send what changed since the last run with --notify to this apprise URL "
        "(repeatable; env PLATFORMCTL_NOTIFY, space-separated).",
    )(f)


def _alert_channels(
    snapshot: str | None, notify_urls: tuple[str, ...], metrics_file: str | None
) -> list[Channel]:
    """Refuse what cannot work before collecting: metrics from a replay (they would report an
    old snapshot as the latest run) and URLs apprise cannot use. A replay with notification
    URLs (say from ``PLATFORMCTL_NOTIFY``) simply sends nothing."""
    if snapshot is not None and metrics_file:
        raise UsageError("--metrics-file describes a live run; it cannot be used with --snapshot")
    if metrics_file:
        output_path(metrics_file, "--metrics-file")  # a usage error before any host is read
    if not notify_urls or snapshot is not None:
        return []
    from platformctl.output.notify import AppriseChannel

    return [AppriseChannel(url) for url in notify_urls]


def _tell_outside(
    report: Report,
    code: ExitCode,
    store: Store,
    channels: list[Channel],
    metrics_file: str | None,
    started: float,
    declared: tuple[Module, ...],
) -> None:
    """Notify and write metrics after a check. Neither changes the exit code: a failure is one
    line on stderr (the URL's scheme and host only); undelivered changes stay in the outbox.
    ``declared``: every module of the repository, of which the check's were some or all."""
    import time

    from platformctl import api
    from platformctl.output.text import clean

    try:
        failures = api.notify(report, store, channels, declared) if channels else []
    except PlatformctlError as exc:  # the store refused the outbox: say so, keep the verdict
        click.echo(f"platformctl: notifications not sent: {clean(str(exc))}", err=True)
        failures = []
    for failure in failures:
        kept = f"{failure.changes} change{'' if failure.changes == 1 else 's'}"
        click.echo(f"platformctl: {failure.problem}; {kept} kept for the next run", err=True)
    if metrics_file:
        from platformctl.output.metrics import write_metrics

        try:
            path = user_path(metrics_file, "--metrics-file")  # checked before collecting
            write_metrics(path, report, code, time.monotonic() - started)
        except OSError as exc:
            click.echo(
                f"platformctl: cannot write metrics file {clean(metrics_file)}: "
                f"{exc.strerror or exc}",
                err=True,
            )


@cli.command("drift-check")
@click.argument("modules", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report (schema v1).")
@click.option(
    "--snapshot",
    metavar="ID|latest",
    help="Replay a stored snapshot instead of collecting (no network).",
)
@click.option("--no-color", is_flag=True, help="Never colour the table.")
@root_option
@db_option
@collect_options
@alert_options
def drift_check(
    modules: tuple[str, ...],
    as_json: bool,
    snapshot: str | None,
    no_color: bool,
    root: str | None,
    db: str | None,
    options: CollectOptions,
    notify_urls: tuple[str, ...],
    metrics_file: str | None,
) -> None:
    """Collect live state from every host in scope and compare it with the declared state.

    Exit codes: 0 all match, 2 drift/missing/stopped, 5 no host reachable, 8 partial, 1 usage.

    Example:

        platformctl drift-check honcho-api --json
    """
    import importlib
    import time

    from platformctl import api, exitcodes

    started = time.monotonic()
    channels = _alert_channels(snapshot, notify_urls, metrics_file)
    # A live run of every module starts each host as soon as its manifest is read, while the
    # rest are read (docs/design.md, "Start-up"); check() then waits for exactly the hosts in
    # scope. What can still be a usage error is checked first, so such a run contacts
    # nothing: the repository's modules/ folder and the store here, the module names (only
    # known once every manifest is read) by not starting early when names are given.
    collecting = None
    if snapshot is None and not modules:
        from platformctl.declared.manifests import find_root

        find_root(root)
        store = _open_store(db)
        collecting = api.Collecting(None, options, store)
    try:
        scope, declared = _load(root, modules, _starter(collecting))
        if collecting is None:
            store = _open_store(db, create=snapshot is None)
        renderer = "platformctl.output.drift_check"
        report = api.check(
            scope,
            store,
            options,
            snapshot,
            while_waiting=lambda: importlib.import_module(renderer),
            started=collecting,
        )
    finally:
        if collecting is not None:
            collecting.close()
    from platformctl.output.drift_check import render_json, render_table, warning_lines

    code = exitcodes.for_report(report)
    for line in warning_lines(report):  # a stale drift_accepted: on stderr, also with --json
        click.echo(line, err=True)
    try:
        if as_json:
            click.echo(render_json(report, code))
        else:
            colour = sys.stdout.isatty() and not no_color and "NO_COLOR" not in os.environ
            click.echo(render_table(report, code, colour_on=colour), nl=False)
    except BrokenPipeError:
        pass  # the reader left (`| head`): nothing to say, as every command; the run counts
    except OSError as exc:
        # A full disk under a cron job's log: the run was made and saved, so it still
        # notifies, writes its metrics and exits with its verdict.
        _unwritten(exc)
    _tell_outside(report, code, store, channels, metrics_file, started, declared)
    sys.exit(code)


# What a write to stdout fails with: a full disk or quota, a file too large, an I/O error,
# a stdout opened for reading only (`1<file`).
_OUTPUT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF})


def _unwritten(exc: OSError) -> None:
    """Say on stderr that stdout could not take the output (if stderr can take that)."""
    with contextlib.suppress(OSError):
        click.echo(f"platformctl: cannot write the output: {exc.strerror or exc}", err=True)


@cli.command("collect")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="H",
    help="Collect this host alias (repeatable); default: every module's host.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot ID and hosts as JSON.")
@root_option
@db_option
@collect_options
def collect_command(
    hosts: tuple[str, ...],
    as_json: bool,
    root: str | None,
    db: str | None,
    options: CollectOptions,
) -> None:
    """Collect live state and store a snapshot, without comparing; prints the snapshot ID.

    Exit codes: 0 every host read, 8 some host failed, 5 no host reachable, 1 usage.

    Example:

        platformctl collect --host rs2000 --host rs3000
    """
    from platformctl import api, exitcodes
    from platformctl.collector.openssh import check_alias
    from platformctl.differ import hosts_in_scope
    from platformctl.output.collect import collect_json, collect_problems

    for host in hosts:
        check_alias(host, "--host")
    if not hosts:
        scope = _load_scope(root, ())
        hosts = tuple(hosts_in_scope(scope))
        if not hosts:
            raise UsageError("no module needs a host; nothing to collect (or pass --host)")
    snapshot_id, collection = api.collect(hosts, _open_store(db), options)
    code = exitcodes.for_collection(collection.hosts)
    if as_json:
        click.echo(collect_json(snapshot_id, collection, code))
    else:
        click.echo(snapshot_id)
        for line in collect_problems(collection):
            click.echo(line, err=True)
    sys.exit(code)


@cli.group("snapshots")
def snapshots_group() -> None:
    """List, show, compare and prune stored snapshots."""


@snapshots_group.command("list")
@click.option("--limit", type=click.IntRange(1, 2**31, clamp=True), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@ignored_root_option
@db_option
def snapshots_list(limit: int, as_json: bool, root: str | None, db: str | None) -> None:
    """The newest snapshots, newest first.

    Example:

        platformctl snapshots list --limit 5
    """
    from platformctl.output.snapshots import list_json, list_table

    items = _open_store(db, create=False).summaries(limit)
    click.echo(list_json(items) if as_json else list_table(items), nl=as_json)


@snapshots_group.command("show")
@click.argument("snapshot_id", metavar="ID|latest")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@ignored_root_option
@db_option
def snapshots_show(snapshot_id: str, as_json: bool, root: str | None, db: str | None) -> None:
    """Everything one snapshot recorded, host by host.

    Example:

        platformctl snapshots show latest --json
    """
    from platformctl.output.snapshots import show_json, show_table

    snap = _open_store(db, create=False).load(snapshot_id)
    click.echo(show_json(snap) if as_json else show_table(snap), nl=as_json)


@snapshots_group.command("diff")
@click.argument("first", metavar="ID1")
@click.argument("second", metavar="ID2")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@ignored_root_option
@db_option
def snapshots_diff(
    first: str, second: str, as_json: bool, root: str | None, db: str | None
) -> None:
    """What changed on the hosts between two snapshots (containers, images, digests, states).

    Example:

        platformctl snapshots diff 41 latest
    """
    from platformctl.differ.snapshot_diff import diff_snapshots
    from platformctl.output.snapshots import diff_json, diff_table

    store = _open_store(db, create=False)
    old, new = store.load(first), store.load(second)
    hosts = diff_snapshots(old, new)
    click.echo(diff_json(old, new, hosts) if as_json else diff_table(old, new, hosts), nl=as_json)


@snapshots_group.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    type=Age(),
    metavar="AGE",
    help="Remove snapshots older than this (e.g. 90d, 12w).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@ignored_root_option
@db_option
def snapshots_prune(older_than: timedelta, as_json: bool, root: str | None, db: str | None) -> None:
    """Remove old snapshots, keeping what drift history still needs.

    Snapshots where a host's state changed are kept whatever their age: drift_since and
    drift-history are computed from them, so their answers do not change.

    Example:

        platformctl snapshots prune --older-than 90d
    """
    from platformctl.clock import utc_now
    from platformctl.output.snapshots import prune_json, prune_text

    result = _open_store(db, create=False, write=True).prune(utc_now() - older_than)
    click.echo(prune_json(result) if as_json else prune_text(result), nl=as_json)


@cli.command("drift-history")
@click.argument("modules", nargs=-1)
@since_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema v1).")
@root_option
@db_option
def drift_history_command(
    modules: tuple[str, ...], since: timedelta, as_json: bool, root: str | None, db: str | None
) -> None:
    """Since when, and for how long, each module was not ok (judged against today's manifests).

    Example:

        platformctl drift-history honcho-api --since 7d
    """
    from platformctl import api
    from platformctl.output.history import history_json, history_table

    scope = _load_scope(root, modules)
    start, now, items = api.drift_history(scope, _open_store(db, create=False), since)
    click.echo(
        history_json(start, now, items) if as_json else history_table(start, now, items), nl=as_json
    )


@cli.command("observe")
@click.argument("modules", nargs=-1)
@click.option("--write", is_flag=True, help="Write the changes (default: only show them).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema observe/v1).")
@click.option(
    "--snapshot",
    metavar="ID|latest",
    help="Replay a stored snapshot instead of collecting (no network).",
)
@root_option
@db_option
@collect_options
def observe_command(
    modules: tuple[str, ...],
    write: bool,
    as_json: bool,
    snapshot: str | None,
    root: str | None,
    db: str | None,
    options: CollectOptions,
) -> None:
    """Record what runs: refresh image_observed from the live state (or a snapshot).

    Without --write, prints the unified diff of every manifest it would change and changes
    nothing. Never touches a host.

    Exit codes: 0 nothing to change (or all written), 2 changes pending, 8 some module could
    not be observed, 1 usage.

    Example (review the plan, then record it):

        platformctl observe honcho-api

        platformctl observe honcho-api --write
    """
    from platformctl import api, exitcodes
    from platformctl.declared.manifests import find_root
    from platformctl.output.observe import observe_json, observe_text

    platform_root = find_root(root)
    scope = _load_scope(str(platform_root), modules)
    store = _open_store(db, create=snapshot is None)
    result = api.observe(scope, store, options, platform_root, snapshot, write)
    code = exitcodes.for_observe(result.observations)
    if as_json:
        click.echo(observe_json(result, code, platform_root))
    else:
        text = observe_text(result, code, platform_root, terminal=sys.stdout.isatty())
        click.echo(text.out, nl=False)
        click.echo(text.err, err=True, nl=False)
    sys.exit(code)


@cli.command("report")
@click.argument("modules", nargs=-1)
@since_option
@click.option(
    "--output",
    "output",
    default="platformctl-report.html",
    show_default=True,
    metavar="FILE",
    help="Where to write the HTML ('-' for stdout).",
)
@root_option
@db_option
def report_command(
    modules: tuple[str, ...], since: timedelta, output: str, root: str | None, db: str | None
) -> None:
    """Write one self-contained HTML file: the current state and a timeline of drift.

    Reads only the store and the manifests (no network); prints the file's path.

    Example:

        platformctl report --since 7d --output weekly.html
    """
    from platformctl import api
    from platformctl.declared.manifests import find_root
    from platformctl.output.report import render_report

    # Checked before any work.
    path = None if output in ("-", "/dev/stdout") else output_path(output, "--output")
    scope = _load_scope(root, modules)
    overview = api.overview(scope, _open_store(db, create=False), since)
    html = render_report(overview, find_root(root))
    if path is None:
        click.echo(html, nl=False)
        return
    try:
        replace_file(path, html.encode("utf-8"))  # a full disk leaves the old report whole
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(str(path))


def _open_store(db: str | None, create: bool = True, write: bool | None = None) -> Store:
    """The store at ``--db`` (or the default path); ``create=False`` for commands that only
    read: opened read-only, and a mistyped path is an error rather than a new empty store
    (``write=True`` for a command that changes an existing store)."""
    from platformctl.snapshots.store import Store, default_db_path

    path = user_path(db, "--db") if db else default_db_path()
    store = Store.open(path, create=create, write=write)
    # Closed when the command ends, however it ends: the console script leaves without the
    # interpreter's teardown, which would otherwise close it (see console()).
    click.get_current_context().call_on_close(store.close)
    return store


def _starter(collecting: api.Collecting | None) -> Callable[[Module], object] | None:
    """What starts a module's host while the manifests are read: every checked module's."""
    if collecting is None:
        return None
    from platformctl.declared.model import CheckedModule

    def start(module: Module) -> None:
        if isinstance(module, CheckedModule):
            collecting.add(module.host)

    return start


def _load_scope(
    root: str | None,
    names: tuple[str, ...],
    on_module: Callable[[Module], object] | None = None,
) -> tuple[Module, ...]:
    """The modules named (or all), with a warning for invalid manifests left out.
    ``on_module`` is given each module as soon as it is read."""
    return _load(root, names, on_module)[0]


def _load(
    root: str | None,
    names: tuple[str, ...],
    on_module: Callable[[Module], object] | None = None,
) -> tuple[tuple[Module, ...], tuple[Module, ...]]:
    """:func:`_load_scope`'s modules, and every module of the repository."""
    from platformctl.declared.manifests import find_root, load_declared
    from platformctl.declared.model import InvalidModule
    from platformctl.declared.yamlcache import ParsedYamlCache
    from platformctl.output.text import clean

    folder = find_root(root)
    cache = ParsedYamlCache.open()
    try:
        declared = load_declared(folder, cache, on_module)
    finally:
        if cache is not None:
            cache.close()
    try:
        scope = declared.select(names)
    except KeyError as exc:
        unknown = exc.args[0]
        from difflib import get_close_matches  # only for this message: its import is slow

        close = get_close_matches(unknown, declared.names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see modules/ for the names"
        raise UsageError(f"unknown module {unknown!r}{hint}") from None

    for module in declared.modules:
        if isinstance(module, InvalidModule) and module not in scope:
            click.echo(f"warning: {clean(module.name)}: {clean(module.problem)}", err=True)
    return scope, declared.modules


def _fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    from platformctl.output.text import clean

    click.echo(f"platformctl: {clean(message)}", err=True)
    sys.exit(code)


# Objects allocated, net, between two collections of the youngest generation (700 by default).
_GC_YOUNG = 50_000


def console() -> NoReturn:
    """The ``platformctl`` command: :func:`main`, then leave at once.

    Tearing the interpreter down after a run (freeing every module of paramiko, cryptography
    and click, and OpenSSL's own cleanup) takes longer than the differ and the renderer
    together (docs/design.md, "Start-up"). By the time :func:`main` exits, the store is
    committed and closed and the connections are closed, so only the output is left to
    flush.

    The cyclic garbage collector starts a collection after 50,000 new tracked objects, not
    700 (docs/design.md, "Start-up"): a fleet run makes millions that die young, nearly none
    of them in cycles, and every collection walks the young ones, every full one all of them.
    """
    gc.set_threshold(_GC_YOUNG)
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:  # pragma: no cover - main() always exits
        code = 0
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else ExitCode.USAGE
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the reader left (a closed pipe): as main() says
            code = code or ExitCode.USAGE
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every error to one line and an exit code."""
    # A stream closed by the caller (`>&-`) is None to Python: output there goes nowhere, as
    # to a reader that left, where it was an AttributeError traceback.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - for the whole run
    try:
        cli.main(args=argv, prog_name="platformctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message(), err=True)  # the help text, as is
        sys.exit(ExitCode.USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message())
    except PlatformctlError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except BrokenPipeError:
        sys.exit(ExitCode.USAGE)
    except OSError as exc:
        if exc.errno in _OUTPUT_ERRORS and exc.filename is None:
            _unwritten(exc)  # stdout on a full disk: every command's output is echoed
            sys.exit(ExitCode.USAGE)
        # Anything else the file system said (a working folder removed under the run).
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
    sys.exit(0)
