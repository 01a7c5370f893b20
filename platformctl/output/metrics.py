"""Prometheus metrics of one ``drift-check`` run, for node_exporter's textfile collector.

Written with prometheus_client's own registry and exposition (``generate_latest``), so the
format and its escaping are the library's; the file is replaced by us, atomically, and only
when it is a regular file (docs/notify.md, "Metrics"): the library's ``write_to_textfile``
renames over whatever the path names, a device or a FIFO included.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from platformctl.differ.model import ModuleStatus, Report
from platformctl.exitcodes import ExitCode
from platformctl.output.text import clean
from platformctl.paths import replace_file

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

PREFIX = "platformctl"


def registry(report: Report, code: ExitCode, duration_seconds: float) -> CollectorRegistry:
    """A fresh registry holding every series of the run (README: "Metrics")."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry(auto_describe=True)
    status = Gauge(
        f"{PREFIX}_module_status",
        "Module status: 1 for the module's current status, 0 for every other status.",
        ["module", "host", "status"],
        registry=reg,
    )
    since = Gauge(
        f"{PREFIX}_module_drift_since_timestamp_seconds",
        "Unix time since which the module has been drift, missing or stopped.",
        ["module", "host"],
        registry=reg,
    )
    up = Gauge(
        f"{PREFIX}_host_up",
        "1 when the host's Docker state was read in this run, 0 when it was not.",
        ["host"],
        registry=reg,
    )
    last_run = Gauge(
        f"{PREFIX}_last_run_timestamp_seconds",
        "Unix time at which the run's snapshot was taken.",
        registry=reg,
    )
    duration = Gauge(
        f"{PREFIX}_run_duration_seconds", "Wall-clock seconds the run took.", registry=reg
    )
    exit_code = Gauge(
        f"{PREFIX}_exit_code",
        "The run's exit code: 0 ok, 2 drift, 5 no host reachable, 8 partial.",
        registry=reg,
    )

    for verdict in report.modules:
        # Labels pass the same sanitizer as the terminal: a host or a repository chose them.
        module, host = clean(verdict.module.name), clean(verdict.module.host or "")
        # One series per status, every member of the enum, so `== 1` alerts work and a status
        # added later gets its series without a change here (kube-state-metrics convention).
        for member in ModuleStatus:
            status.labels(module, host, str(member)).set(1 if verdict.status is member else 0)
        if verdict.drift_since is not None:
            since.labels(module, host).set(verdict.drift_since.timestamp())
    for result in report.hosts:
        up.labels(clean(result.host)).set(1 if result.ok else 0)
    last_run.set(report.taken_at.timestamp())
    duration.set(round(duration_seconds, 3))
    exit_code.set(int(code))
    return reg


def write_metrics(path: Path, report: Report, code: ExitCode, duration_seconds: float) -> None:
    """Replace ``path`` atomically with the run's metrics; ``OSError`` when it cannot be."""
    from prometheus_client import generate_latest

    replace_file(path, generate_latest(registry(report, code, duration_seconds)))
