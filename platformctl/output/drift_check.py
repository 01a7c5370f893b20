"""``drift-check``: the stable JSON contract (``platformctl.drift-check/v1``) and the table."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, assert_never

from platformctl.clock import to_iso
from platformctl.declared.model import CheckedModule, ExternalModule, InvalidModule
from platformctl.declared.reference import (
    short_digest,
    started_by_id,
    try_parse_reference,
)
from platformctl.differ.model import ModuleStatus, ModuleVerdict, Report
from platformctl.exitcodes import ExitCode
from platformctl.output.hosts import host_summary
from platformctl.output.text import age, clean, row, short_ref, widths

SCHEMA = "platformctl.drift-check/v1"


def colour(status: ModuleStatus) -> str:
    """The SGR colour of a status in the table."""
    match status:
        case ModuleStatus.OK:
            return "32"
        case ModuleStatus.SKIPPED:
            return "2"
        case ModuleStatus.ACCEPTED:
            return "36"
        case ModuleStatus.DRIFT | ModuleStatus.MISSING | ModuleStatus.STOPPED:
            return "31"
        case ModuleStatus.UNVERIFIABLE | ModuleStatus.NOT_COLLECTED | ModuleStatus.INVALID:
            return "33"
        case ModuleStatus.UNREACHABLE | ModuleStatus.ERROR:
            return "35"
        case _:
            assert_never(status)


def report_json(report: Report, code: ExitCode) -> dict[str, Any]:
    """The ``platformctl.drift-check/v1`` document (README: "JSON output")."""
    return {
        "schema": SCHEMA,
        "exit_code": int(code),
        "snapshot": {
            "id": report.snapshot_id,
            "taken_at": to_iso(report.taken_at),
            "status": str(report.snapshot_status),
            "replay": report.replay,
        },
        "summary": {str(s): n for s, n in report.summary().items()},
        "hosts": [host_summary(h) for h in report.hosts],
        "modules": [module_json(v) for v in report.modules],
    }


def _module_fields(v: ModuleVerdict) -> dict[str, Any]:
    """The module's own keys of the contract; ``None`` where its kind has no such field."""
    m = v.module
    fields: dict[str, Any] = dict.fromkeys(
        ("host", "orchestrator", "compose_project", "compose_service", "container"), None
    )
    fields["declared"] = fields["compose"] = None
    match m:
        case InvalidModule():
            pass
        case ExternalModule():
            fields.update(host=m.host, orchestrator="external")
        case CheckedModule():
            fields.update(
                host=m.host,
                orchestrator=str(m.orchestrator),
                compose_project=m.compose_project,
                compose_service=m.compose_service,
                container=m.container,
                declared={
                    "image": m.declared_raw,
                    "tag": m.declared.tag,
                    "digest": m.declared.digest,
                },
            )
            if m.compose is not None:
                fields["compose"] = {
                    "image": m.compose.raw,
                    "resolved": m.compose.resolved,
                    "build_only": m.compose.build_only,
                    "reason": m.compose.reason,
                    "file": str(m.compose.path),
                }
        case _:
            assert_never(m)
    return fields


def module_json(v: ModuleVerdict) -> dict[str, Any]:
    """One module of the report: its declaration, evidence, checks and verdict."""
    f = _module_fields(v)
    return {
        "module": v.module.name,
        "host": f["host"],
        "orchestrator": f["orchestrator"],
        "compose_project": f["compose_project"],
        "compose_service": f["compose_service"],
        "container": f["container"],
        "manifest": str(v.module.path),
        "status": str(v.status),
        "accepted_status": str(v.real_status) if v.status is ModuleStatus.ACCEPTED else None,
        "declared": f["declared"],
        "compose": f["compose"],
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
                "check": str(c.check),
                "result": str(c.result),
                "container": c.container,
                "changes": {k: [old, new] for k, (old, new) in c.changes.items()},
                "note": c.note,
            }
            for c in v.checks
        ],
        "drift_since": to_iso(v.drift_since) if v.drift_since else None,
        "reason": v.reason,
        "accepted": _acceptance_json(v),
        "warnings": list(v.warnings),
    }


def _acceptance_json(v: ModuleVerdict) -> dict[str, Any] | None:
    """The module's ``drift_accepted`` and what became of it; None when it has none."""
    if v.acceptance is None:
        return None
    a = v.acceptance.acceptance
    return {
        "reason": a.reason,
        "until": a.until,
        "expires_at": to_iso(a.expires),
        "digest": a.digest,
        "outcome": str(v.acceptance.outcome),
    }


def warning_lines(report: Report) -> list[str]:
    """One stderr line per warning of a module (a stale acceptance), host text cleaned."""
    return [
        f"warning: {clean(v.module.name)}: {clean(w)}" for v in report.modules for w in v.warnings
    ]


def render_json(report: Report, code: ExitCode) -> str:
    """The JSON document as text."""
    return json.dumps(report_json(report, code), indent=2)


def _declared_cell(v: ModuleVerdict) -> str:
    return short_ref(v.module.declared) if isinstance(v.module, CheckedModule) else "-"


def _live_cell(v: ModuleVerdict) -> str:
    if not v.live:
        return "-"
    declared = v.module.declared if isinstance(v.module, CheckedModule) else None
    repo = declared.repository if declared else None
    names = (declared,) if declared else ()
    cells = []
    for c in v.live:
        if started_by_id(c.image, c.image_id, names):
            cell = f"image {short_digest(c.image_id)}"
        else:
            ref = try_parse_reference(c.image)
            digest = None
            if c.digests:
                same = [
                    d for d in c.digests if (r := try_parse_reference(d)) and r.repository == repo
                ]
                digest = (same or list(c.digests))[0].split("@", 1)[-1]
            cell = short_ref(ref, digest) if ref else c.image[:30]
        cells.append(cell if c.running else f"{cell} ({c.state})")
    if len(cells) > 2:
        return f"{cells[0]}, {cells[1]} +{len(cells) - 2}"
    return ", ".join(cells)


def render_table(
    report: Report, code: ExitCode, colour_on: bool = False, now: datetime | None = None
) -> str:
    """The human table: a row a module, detail lines for problems, host problems, summary."""
    header = ("MODULE", "HOST", "STATUS", "DECLARED", "LIVE", "SINCE")
    rows = [
        tuple(
            clean(cell)
            for cell in (
                v.module.name,
                v.module.host or "-",
                str(v.status).upper(),
                _declared_cell(v),
                _live_cell(v),
                age(v.drift_since, now),
            )
        )
        for v in report.modules
    ]
    sizes = widths(header, rows)
    lines = [row(header, sizes)]
    for v, cells in zip(report.modules, rows, strict=True):
        lines.append(row(cells, sizes, {2: colour(v.status)} if colour_on else None))
        if v.status is ModuleStatus.ACCEPTED and v.acceptance is not None:
            a = v.acceptance.acceptance
            lines.append(f"    accepted until {a.until}: {clean(a.reason)}")
            lines.append(f"    {v.real_status}: {clean(v.reason)}")
        elif v.status not in (ModuleStatus.OK, ModuleStatus.SKIPPED):
            lines.append(f"    {clean(v.reason)}")
        lines.extend(f"    warning: {clean(w)}" for w in v.warnings)
    problems = [h for h in report.hosts if not h.ok]
    if problems:
        lines.append("")
        lines.append("Host problems:")
        lines.extend(f"  {clean(h.host)}: {h.status}: {clean(h.reason or '')}" for h in problems)
    parts = [f"{n} {s}" for s, n in report.summary().items() if n]
    where = f"snapshot {report.snapshot_id}" if report.snapshot_id is not None else "no snapshot"
    replay = ", replayed" if report.replay else ""
    lines.append("")
    lines.append(
        f"{len(report.modules)} modules: {', '.join(parts) or 'none'} "
        f"({where} taken {to_iso(report.taken_at)}{replay}; exit {int(code)})"
    )
    return "\n".join(lines) + "\n"
