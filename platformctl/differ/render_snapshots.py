"""Rendering for the snapshot and history commands: tables and stable JSON documents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from platformctl.collector.model import HostResult
from platformctl.differ.history import ModuleHistory, iso
from platformctl.differ.render import age, duration
from platformctl.differ.snapshot_diff import HostDiff
from platformctl.snapshots.model import PruneResult, Snapshot, SnapshotSummary


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def list_json(items: list[SnapshotSummary]) -> str:
    """``platformctl.snapshots-list/v1``."""
    return json.dumps(
        {
            "schema": "platformctl.snapshots-list/v1",
            "snapshots": [
                {
                    "id": s.id,
                    "taken_at": s.taken_at,
                    "status": str(s.status),
                    "tool_version": s.tool_version,
                    "hosts": s.hosts,
                    "hosts_ok": s.hosts_ok,
                }
                for s in items
            ],
        },
        indent=2,
    )


def list_table(items: list[SnapshotSummary]) -> str:
    """One row per snapshot, newest first."""
    if not items:
        return "no snapshots yet (run 'platformctl drift-check' or 'platformctl collect')\n"
    rows = [
        (str(s.id), s.taken_at, str(s.status), f"{s.hosts_ok}/{s.hosts}", s.tool_version)
        for s in items
    ]
    return "\n".join(_table(("ID", "TAKEN_AT", "STATUS", "HOSTS_OK", "VERSION"), rows)) + "\n"


def _host_json(h: HostResult) -> dict[str, Any]:
    state = h.state
    return {
        "host": h.host,
        "status": str(h.status),
        "reason": h.reason,
        "docker_version": h.docker_version,
        "storage_driver": h.storage_driver,
        "duration_ms": h.duration_ms,
        "containers": None
        if state is None
        else [
            {
                "id": c.id,
                "name": c.name,
                "created": c.created,
                "started": c.started,
                "state": c.status,
                "running": c.running,
                "image": c.config_image,
                "image_id": c.image_id,
                "compose_project": c.project,
                "compose_service": c.service,
                "compose_oneoff": c.oneoff,
                "compose_number": c.number,
            }
            for c in state.containers
        ],
        "images": None
        if state is None
        else [
            {"id": i.id, "repo_tags": list(i.repo_tags), "repo_digests": list(i.repo_digests)}
            for i in state.images
        ],
    }


def show_json(snap: Snapshot) -> str:
    """``platformctl.snapshot/v1``: the snapshot exactly as stored."""
    return json.dumps(
        {
            "schema": "platformctl.snapshot/v1",
            "id": snap.id,
            "taken_at": snap.taken_at,
            "status": str(snap.status),
            "tool_version": snap.tool_version,
            "hosts": [_host_json(h) for h in snap.hosts],
        },
        indent=2,
    )


def show_table(snap: Snapshot) -> str:
    """The snapshot's hosts and their containers."""
    lines = [
        f"snapshot {snap.id} taken {snap.taken_at}: {snap.status} (platformctl {snap.tool_version})"
    ]
    for h in snap.hosts:
        lines.append("")
        extra = f", docker {h.docker_version} ({h.storage_driver})" if h.docker_version else ""
        lines.append(f"{h.host}: {h.status}{extra}, {h.duration_ms} ms")
        if h.reason:
            lines.append(f"  {h.reason}")
        if h.state is None:
            continue
        rows = []
        for c in h.state.containers:
            image = h.state.image(c.image_id)
            digest = (
                image.repo_digests[0].split("@")[-1][7:19] if image and image.repo_digests else "-"
            )
            rows.append((c.name, c.status, c.config_image, c.image_id[7:19], digest))
        if rows:
            lines.extend(
                "  " + line
                for line in _table(("CONTAINER", "STATE", "IMAGE", "IMAGE_ID", "DIGEST"), rows)
            )
    return "\n".join(lines) + "\n"


def diff_json(old: Snapshot, new: Snapshot, hosts: list[HostDiff]) -> str:
    """``platformctl.snapshots-diff/v1``: only hosts where something changed."""
    return json.dumps(
        {
            "schema": "platformctl.snapshots-diff/v1",
            "from": {"id": old.id, "taken_at": old.taken_at},
            "to": {"id": new.id, "taken_at": new.taken_at},
            "hosts": [
                {
                    "host": d.host,
                    "status": list(d.status) if d.status else None,
                    "added": list(d.added),
                    "removed": list(d.removed),
                    "changed": [
                        {
                            "container": c.container,
                            "changes": {k: list(v) for k, v in c.changes.items()},
                        }
                        for c in d.changed
                    ],
                }
                for d in hosts
                if not d.empty
            ],
        },
        indent=2,
    )


def diff_table(old: Snapshot, new: Snapshot, hosts: list[HostDiff]) -> str:
    """Readable lines: ``+`` added, ``-`` removed, ``~`` changed."""
    lines = [f"snapshot {old.id} ({old.taken_at}) → {new.id} ({new.taken_at})"]
    changed = [d for d in hosts if not d.empty]
    if not changed:
        lines.append("no changes on any host")
    for d in changed:
        lines.append(f"{d.host}:")
        if d.status:
            before, after = (s or "not collected" for s in d.status)
            lines.append(f"  status {before} → {after}")
        lines.extend(f"  + {name}" for name in d.added)
        lines.extend(f"  - {name}" for name in d.removed)
        for c in d.changed:
            parts = ", ".join(f"{k} {_brief(a)} → {_brief(b)}" for k, (a, b) in c.changes.items())
            lines.append(f"  ~ {c.container}: {parts}")
    return "\n".join(lines) + "\n"


def _brief(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_brief(v) for v in value) + "]"
    text = str(value)
    if "sha256:" in text:
        head, _, digest = text.partition("sha256:")
        return f"{head}sha256:{digest[:12]}…"
    return text


def prune_json(cutoff: str, result: PruneResult) -> str:
    """``platformctl.snapshots-prune/v1``."""
    return json.dumps(
        {
            "schema": "platformctl.snapshots-prune/v1",
            "cutoff": cutoff,
            "removed_snapshots": result.removed_snapshots,
            "kept_older": result.kept_older,
            "removed_states": result.removed_states,
        },
        indent=2,
    )


def prune_text(cutoff: str, result: PruneResult) -> str:
    """One line saying what went and what stayed."""
    return (
        f"removed {result.removed_snapshots} snapshots taken before {cutoff} and "
        f"{result.removed_states} unused host states; kept {result.kept_older} older "
        "snapshots that drift history still needs (host state changes)\n"
    )


def history_json(since: datetime, now: datetime, items: list[ModuleHistory]) -> str:
    """``platformctl.drift-history/v1`` (SPEC §6.1)."""
    return json.dumps(
        {
            "schema": "platformctl.drift-history/v1",
            "since": iso(since),
            "modules": [
                {
                    "module": h.module.name,
                    "status": str(h.status),
                    "drift_seconds": h.seconds_within(since, now),
                    "intervals": [
                        {"status": str(i.status), "from": i.start, "to": i.end}
                        for i in h.within(since)
                    ],
                }
                for h in items
            ],
        },
        indent=2,
    )


def history_table(since: datetime, now: datetime, items: list[ModuleHistory]) -> str:
    """A row per module with its not-ok time in the window, then its intervals."""
    rows = []
    for h in items:
        seconds = h.seconds_within(since, now)
        rows.append(
            (
                h.module.name,
                str(h.status).upper(),
                duration(seconds) if seconds else "-",
                str(len(h.within(since))),
            )
        )
    header, *table = _table(("MODULE", "STATUS", "NOT_OK", "INTERVALS"), rows)
    lines = [f"since {iso(since)}", header]
    for h, line in zip(items, table, strict=True):
        lines.append(line)
        for i in h.within(since):
            end = i.end or f"now ({age(i.start, now)})"
            lines.append(f"    {i.status}: {i.start} → {end}")
    return "\n".join(lines) + "\n"
