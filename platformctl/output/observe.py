"""``observe``: the plan as a unified diff, the per-module outcome, and the JSON contract
(``platformctl.observe/v1``)."""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from platformctl.clock import to_iso
from platformctl.declared.model import CheckedModule
from platformctl.differ.observe import Observation, ObserveReport, ObserveStatus
from platformctl.exitcodes import ExitCode
from platformctl.output.hosts import host_summary
from platformctl.output.text import clean

SCHEMA = "platformctl.observe/v1"
_NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass(frozen=True)
class Rendered:
    """What goes to stdout (the patch, or the JSON) and to stderr (what happened)."""

    out: str
    err: str


def relative(path: Path, root: Path) -> str:
    """``path`` relative to the platform root, as a patch names it."""
    return os.path.relpath(path, root)


def _lines(text: str) -> list[str]:
    """``text`` split after each ``\\n`` only, as git and patch count lines.

    ``str.splitlines`` also breaks at ``\\x0b``, ``\\x85``, ``\\u2028`` and others, which
    would give a patch that does not apply to a file holding one of them.
    """
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


_GIT_ESCAPES = {"\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r"}
_GIT_QUOTED = re.compile(r'[\x00-\x1f\x7f"\\]')


def patch_name(name: str) -> str:
    """A file name in a patch header as git writes it: as it is, or, when it holds a control
    character, a double quote or a backslash, in double quotes with C escapes, which `git
    apply` reads back (a tab or a line break in a bare name ends or splits it)."""
    if not _GIT_QUOTED.search(name):
        return name

    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        if char in _GIT_ESCAPES:
            return "\\" + _GIT_ESCAPES[char]
        if char in '"\\':
            return "\\" + char
        return f"\\{ord(char):03o}"

    return '"' + _GIT_QUOTED.sub(escaped, name) + '"'


def unified_diff(o: Observation, root: Path) -> str:
    """The change to one manifest as a unified diff (``a/…`` and ``b/…``, relative to the
    root, so ``git apply`` in the root applies it); empty when there is no change."""
    if o.edit is None:
        return ""
    name = relative(o.module.path, root)
    lines = difflib.unified_diff(
        _lines(o.edit.before_text),
        _lines(o.edit.after_text),
        fromfile=patch_name(f"a/{name}"),
        tofile=patch_name(f"b/{name}"),
    )
    text = []
    for line in lines:
        text.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE)
    return "".join(text)


def _observed_at(text: str) -> str | None:
    """``observed_at`` of a manifest text's mapping-form ``image_observed``, as text."""
    import yaml

    value = yaml.safe_load(text)["spec"]["runtime"]["image_observed"]
    if not isinstance(value, dict) or value.get("observed_at") is None:
        return None
    when = value["observed_at"]
    if isinstance(when, datetime):
        return to_iso(when)
    return when.isoformat() if isinstance(when, date) else str(when)


def module_json(o: Observation, root: Path) -> dict[str, Any]:
    """One module of the ``observe`` document."""
    m = o.module
    before = m.declared_raw if isinstance(m, CheckedModule) else None
    after: Any = None
    if o.status is ObserveStatus.UNCHANGED:
        after = before
    elif o.status is ObserveStatus.CHANGED and o.observed is not None:
        after = o.observed.reference
    return {
        "module": m.name,
        "host": m.host,
        "manifest": relative(m.path, root),
        "status": str(o.status),
        "written": o.written,
        "drift_status": str(o.verdict.status),
        "before": before,
        "after": after,
        "observed_at": _observed_at(o.edit.after_text) if o.edit else None,
        "diff": unified_diff(o, root) or None,
        "reason": o.reason,
    }


def observe_json(result: ObserveReport, code: ExitCode, root: Path) -> str:
    """The ``platformctl.observe/v1`` document (README: "observe")."""
    report = result.report
    counts = dict.fromkeys((str(s) for s in ObserveStatus), 0)
    for o in result.observations:
        counts[str(o.status)] += 1
    doc = {
        "schema": SCHEMA,
        "exit_code": int(code),
        "write": result.write,
        "snapshot": {
            "id": report.snapshot_id,
            "taken_at": to_iso(report.taken_at),
            "status": str(report.snapshot_status),
            "replay": report.replay,
        },
        "summary": counts,
        "hosts": [host_summary(h) for h in report.hosts],
        "modules": [module_json(o, root) for o in result.observations],
    }
    return json.dumps(doc, indent=2)


def observe_text(result: ObserveReport, code: ExitCode, root: Path, terminal: bool) -> Rendered:
    """The patch on stdout (cleaned line by line on a terminal; raw otherwise, so it applies)
    and, on stderr, one line per module that was written or skipped, then a summary."""
    patch = "".join(unified_diff(o, root) for o in result.observations)
    if terminal:
        patch = "".join(clean(line.rstrip("\r\n")) + "\n" for line in _lines(patch))
    err: list[str] = []
    for o in result.observations:
        name, where = clean(o.module.name), clean(relative(o.module.path, root))
        if o.status is ObserveStatus.CHANGED:
            verb = "wrote" if o.written else "would change"
            err.append(f"{verb} {where} ({name})")
        elif o.status is ObserveStatus.SKIPPED:
            err.append(f"skipped {name}: {clean(o.reason or '')}")
    report = result.report
    counts = {s: sum(1 for o in result.observations if o.status is s) for s in ObserveStatus}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    where = f"snapshot {report.snapshot_id}" if report.snapshot_id is not None else "no snapshot"
    replay = ", replayed" if report.replay else ""
    pending = ""
    if any(o.status is ObserveStatus.CHANGED and not o.written for o in result.observations):
        pending = "; review the diff, then run again with --write to record it"
    err.append(
        f"{len(result.observations)} modules: {', '.join(parts) or 'none'} "
        f"({where} taken {to_iso(report.taken_at)}{replay}; exit {int(code)}){pending}"
    )
    return Rendered(out=patch, err="\n".join(err) + "\n")
