"""The command line: parse options, build objects, call one library function, render, exit.

Errors become one line on stderr and an exit code; never a traceback. Click's own usage errors
exit 2 by default, but 2 means drift here, so every usage error exits 1 (SPEC §5.2).
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from platformctl import __version__
from platformctl.errors import PlatformctlError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 1
EXIT_INTERRUPTED = 130


def root_option(f: F) -> F:
    """``--root``: the platform repository (env ``PLATFORMCTL_ROOT``)."""
    return click.option(
        "--root",
        envvar="PLATFORMCTL_ROOT",
        metavar="DIR",
        help="Platform repository root (default: nearest folder above with modules/).",
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
    """The options that shape a live collection."""
    options = [
        click.option("--ssh-config", metavar="PATH", help="ssh config (default ~/.ssh/config)."),
        click.option(
            "--docker-command",
            envvar="PLATFORMCTL_DOCKER_COMMAND",
            default="docker",
            show_default=True,
            metavar="CMD",
            help="How to run docker on the hosts, e.g. 'sudo -n docker'.",
        ),
        click.option(
            "--jobs",
            type=click.IntRange(1, 512),
            default=16,
            show_default=True,
            help="Hosts collected in parallel.",
        ),
        click.option(
            "--connect-timeout",
            type=click.FloatRange(min=0.1),
            default=10.0,
            show_default=True,
            metavar="S",
            help="Seconds to connect and handshake.",
        ),
        click.option(
            "--command-timeout",
            type=click.FloatRange(min=0.1),
            default=60.0,
            show_default=True,
            metavar="S",
            help="Seconds for the remote command.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="platformctl")
def cli() -> None:
    """Compare what runs on your Docker hosts with what your platform repository declares."""


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
def drift_check(
    modules: tuple[str, ...],
    as_json: bool,
    snapshot: str | None,
    no_color: bool,
    root: str | None,
    db: str | None,
    ssh_config: str | None,
    docker_command: str,
    jobs: int,
    connect_timeout: float,
    command_timeout: float,
) -> None:
    """Collect live state from every host in scope and compare it with the declared state.

    Exit codes: 0 all match, 2 drift/missing/stopped, 5 no host reachable, 8 partial, 1 usage.

    Example:

        platformctl drift-check honcho-api --json
    """
    from platformctl.differ.render import render_json, render_table
    from platformctl.run import check

    declared, scope = _load_scope(root, modules)
    report = check(
        declared,
        scope,
        store_path=_db_path(db),
        snapshot=snapshot,
        ssh_config=ssh_config,
        docker_command=docker_command,
        jobs=jobs,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
    )
    if as_json:
        click.echo(render_json(report))
    else:
        colour = sys.stdout.isatty() and not no_color and "NO_COLOR" not in os.environ
        click.echo(render_table(report, colour=colour), nl=False)
    sys.exit(report.exit_code)


def _db_path(db: str | None) -> Path:
    from platformctl.snapshots.store import default_db_path

    return Path(db).expanduser() if db else default_db_path()


def _load_scope(root: str | None, names: tuple[str, ...]) -> tuple[Any, Any]:
    from platformctl.declared.manifests import find_root, load_declared

    declared = load_declared(find_root(root))
    try:
        scope = declared.select(names)
    except KeyError as exc:
        unknown = exc.args[0]
        close = difflib.get_close_matches(unknown, declared.names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see modules/ for the names"
        raise UsageError(f"unknown module {unknown!r}{hint}") from None
    for module in declared.modules:
        if module.problem and module not in scope:
            click.echo(f"warning: {module.name}: {module.problem}", err=True)
    return declared, scope


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"platformctl: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every error to one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="platformctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except click.ClickException as exc:
        _fail(exc.format_message())
    except PlatformctlError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_USAGE)
    sys.exit(0)
