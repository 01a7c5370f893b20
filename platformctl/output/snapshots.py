"""``snapshots list/show/diff/prune``: tables and stable JSON documents."""

from __future__ import annotations

import json
from typing import Any

from platformctl.clock import to_iso
from platformctl.declared.reference import elide_digests, short_digest
from platformctl.differ.snapshot_diff import HostDiff
from platformctl.output.hosts import host_json
from platformctl.output.text import clean, table
from platformctl.snapshots.model import PruneResult, Snapshot, SnapshotSummary


def list_json(items: list[SnapshotSummary]) -> str:
    """``platformctl.snapshots-list/v1``."""
    return json.dumps(
        {
            "schema": "platformctl.snapshots-list/v1",
            "snapshots": [
                {
                    "id": s.id,
                    "taken_at": to_iso(s.taken_at),
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
        # The version is the store's text, written by whichever program wrote the file.
        (
            str(s.id),
            to_iso(s.taken_at),
            str(s.status),
            f"{s.hosts_ok}/{s.hosts}",
            clean(s.tool_version),
        )
        for s in items
    ]
    return "\n".join(table(("ID", "TAKEN_AT", "STATUS", "HOSTS_OK", "VERSION"), rows)) + "\n"


def show_json(snap: Snapshot) -> str:
    """``platformctl.snapshot/v1``: the snapshot exactly as stored."""
    return json.dumps(
        {
            "schema": "platformctl.snapshot/v1",
            "id": snap.id,
            "taken_at": to_iso(snap.taken_at),
            "status": str(snap.status),
            "tool_version": snap.tool_version,
            "hosts": [host_json(h) for h in snap.hosts],
        },
        indent=2,
    )


def show_table(snap: Snapshot) -> str:
    """The snapshot's hosts and their containers."""
    lines = [
        f"snapshot {snap.id} taken {to_iso(snap.taken_at)}: {snap.status} "
        f"(platformctl {clean(snap.tool_version)})"
    ]
    for h in snap.hosts:
        lines.append("")
        extra = f", docker {h.docker_version} ({h.storage_driver})" if h.docker_version else ""
        lines.append(clean(f"{h.host}: {h.status}{extra}, {h.duration_ms} ms"))
        if h.reason:
            lines.append(f"  {clean(h.reason)}")
        if h.state is None:
            continue
        rows = []
        for c in h.state.containers:
            image = h.state.image(c.image_id)
            digest = short_digest(image.repo_digests[0]) if image and image.repo_digests else "-"
            cells = (c.name, c.status, c.config_image, short_digest(c.image_id), digest)
            rows.append(tuple(clean(cell) for cell in cells))
        if rows:
            lines.extend(
                "  " + line
                for line in table(("CONTAINER", "STATE", "IMAGE", "IMAGE_ID", "DIGEST"), rows)
            )
    return "\n".join(lines) + "\n"


def diff_json(old: Snapshot, new: Snapshot, hosts: list[HostDiff]) -> str:
    """``platformctl.snapshots-diff/v1``: only hosts where something changed."""
    return json.dumps(
        {
            "schema": "platformctl.snapshots-diff/v1",
            "from": {"id": old.id, "taken_at": to_iso(old.taken_at)},
            "to": {"id": new.id, "taken_at": to_iso(new.taken_at)},
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
    lines = [f"snapshot {old.id} ({to_iso(old.taken_at)}) → {new.id} ({to_iso(new.taken_at)})"]
    changed = [d for d in hosts if not d.empty]
    if not changed:
        lines.append("no changes on any host")
    for d in changed:
        lines.append(f"{clean(d.host)}:")
        if d.status:
            before, after = (s or "not collected" for s in d.status)
            lines.append(f"  status {before} → {after}")
        lines.extend(f"  + {clean(name)}" for name in d.added)
        lines.extend(f"  - {clean(name)}" for name in d.removed)
        for c in d.changed:
            parts = ", ".join(f"{k} {_brief(a)} → {_brief(b)}" for k, (a, b) in c.changes.items())
            lines.append(f"  ~ {clean(c.container)}: {parts}")
    return "\n".join(lines) + "\n"


def _brief(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_brief(v) for v in value) + "]"
    return clean(elide_digests(str(value)))


def prune_json(result: PruneResult) -> str:
    """``platformctl.snapshots-prune/v1``."""
    return json.dumps(
        {
            "schema": "platformctl.snapshots-prune/v1",
            "cutoff": to_iso(result.cutoff),
            "removed_snapshots": result.removed_snapshots,
            "kept_older": result.kept_older,
            "removed_states": result.removed_states,
        },
        indent=2,
    )


def prune_text(result: PruneResult) -> str:
    """One line saying what went and what stayed."""
    return (
        f"removed {result.removed_snapshots} snapshots taken before {to_iso(result.cutoff)} and "
        f"{result.removed_states} unused host states; kept {result.kept_older} older "
        "snapshots that drift history still needs (host state changes)\n"
    )
