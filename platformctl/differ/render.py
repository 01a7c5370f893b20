"""Rendering a report: the stable JSON contract (v1) and the human table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from platformctl.declared.reference import ImageRef, try_parse_reference
from platformctl.differ.model import ModuleStatus, ModuleVerdict, Report

SCHEMA = "platformctl.drift-check/v1"

_COLOURS = {
    ModuleStatus.OK: "32",
    ModuleStatus.SKIPPED: "2",
    ModuleStatus.DRIFT: "31",
    ModuleStatus.MISSING: "31",
    ModuleStatus.STOPPED: "31",
    ModuleStatus.UNVERIFIABLE: "33",
    ModuleStatus.UNREACHABLE: "35",
    ModuleStatus.ERROR: "35",
    ModuleStatus.NOT_COLLECTED: "33",
    ModuleStatus.INVALID: "33",
}


def report_json(report: Report) -> dict[str, Any]:
    """The ``platformctl.drift-check/v1`` document (README: "JSON output")."""
    return {
        "schema": SCHEMA,
        "exit_code": report.exit_code,
        "snapshot": {
            "id": report.snapshot_id,
            "taken_at": report.taken_at,
            "status": report.snapshot_status,
            "replay": report.replay,
        },
        "summary": report.summary(),
        "hosts": [
            {
                "host": h.host,
                "status": str(h.status),
                "reason": h.reason,
                "containers": len(h.state.containers) if h.state else None,
                "docker_version": h.docker_version,
                "storage_driver": h.storage_driver,
                "duration_ms": h.duration_ms,
            }
            for h in report.hosts
        ],
        "modules": [_module_json(v) for v in report.modules],
    }


def _module_json(v: ModuleVerdict) -> dict[str, Any]:
    m = v.module
    declared = None
    if m.declared is not None:
        declared = {"image": m.declared_raw, "tag": m.declared.tag, "digest": m.declared.digest}
    compose = None
    if m.compose is not None:
        compose = {
            "image": m.compose.raw,
            "resolved": m.compose.resolved,
            "build_only": m.compose.build_only,
            "reason": m.compose.reason,
            "file": str(m.compose.path),
        }
    return {
        "module": m.name,
        "host": m.host,
        "orchestrator": str(m.orchestrator) if m.orchestrator else None,
        "compose_project": m.compose_project,
        "compose_service": m.compose_service,
        "container": m.container,
        "manifest": str(m.path),
        "status": str(v.status),
        "declared": declared,
        "compose": compose,
        "live": [
            {
                "container": c.container,
                "image": c.image,
                "image_id": c.image_id,
                "digests": list(c.digests),
                "state": c.state,
            }
            for c in v.live
        ],
        "checks": [
            {
                "check": c.check,
                "result": str(c.result),
                "container": c.container,
                "changes": {k: [old, new] for k, (old, new) in c.changes.items()},
                "note": c.note,
            }
            for c in v.checks
        ],
        "drift_since": v.drift_since,
        "reason": v.reason,
    }


def render_json(report: Report) -> str:
    """The JSON document as text."""
    return json.dumps(report_json(report), indent=2)


def short_ref(ref: ImageRef | None, digest: str | None = None) -> str:
    """``name:tag@123456789abc``: last path component, tag, 12-character digest."""
    if ref is None:
        return "-"
    text = ref.short_name
    if ref.tag:
        text += f":{ref.tag}"
    digest = digest or ref.digest
    if digest:
        text += "@" + digest.split(":", 1)[-1][:12]
    return text


def _live_cell(v: ModuleVerdict) -> str:
    if not v.live:
        return "-"
    cells = []
    for c in v.live:
        ref = try_parse_reference(c.image)
        digest = None
        if c.digests:
            repo = v.module.declared.repository if v.module.declared else None
            same = [d for d in c.digests if (r := try_parse_reference(d)) and r.repository == repo]
            digest = (same or list(c.digests))[0].split("@", 1)[-1]
        cell = short_ref(ref, digest) if ref else c.image[:30]
        if not c.running:
            cell += f" ({c.state})"
        cells.append(cell)
    if len(cells) > 2:
        return f"{cells[0]}, {cells[1]} +{len(cells) - 2}"
    return ", ".join(cells)


def duration(seconds: int) -> str:
    """``3d 4h`` / ``5h 12m`` / ``40m``; under a minute, ``12s``."""
    days, rem = divmod(max(0, seconds), 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def age(since: str | None, now: datetime | None = None) -> str:
    """The time elapsed since an ISO timestamp, as :func:`duration`; ``-`` for None."""
    if not since:
        return "-"
    try:
        start = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    return duration(int(((now or datetime.now(UTC)) - start).total_seconds()))


def render_table(report: Report, colour: bool = False) -> str:
    """The human table: a row a module, detail lines for problems, host problems, summary."""
    header = ("MODULE", "HOST", "STATUS", "DECLARED", "LIVE", "SINCE")
    rows = []
    for v in report.modules:
        rows.append(
            (
                v.module.name,
                v.module.host or "-",
                str(v.status).upper(),
                short_ref(v.module.declared),
                _live_cell(v),
                age(v.drift_since),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for v, row in zip(report.modules, rows, strict=True):
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        if colour:
            cells[2] = f"\033[{_COLOURS[v.status]}m{cells[2]}\033[0m"
        lines.append("  ".join(cells).rstrip())
        if v.status not in (ModuleStatus.OK, ModuleStatus.SKIPPED):
            lines.append(f"    {v.reason}")
    problems = [h for h in report.hosts if h.status != "ok"]
    if problems:
        lines.append("")
        lines.append("Host problems:")
        for h in problems:
            lines.append(f"  {h.host}: {h.status}: {h.reason}")
    counts = report.summary()
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    where = f"snapshot {report.snapshot_id}" if report.snapshot_id is not None else "no snapshot"
    replay = ", replayed" if report.replay else ""
    lines.append("")
    lines.append(
        f"{len(report.modules)} modules: {', '.join(parts) or 'none'} "
        f"({where} taken {report.taken_at}{replay}; exit {report.exit_code})"
    )
    return "\n".join(lines) + "\n"
