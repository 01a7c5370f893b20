"""What changed on the hosts between two snapshots (``snapshots diff``), via deepdiff."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from platformctl.collector.model import HostResult, HostState
from platformctl.snapshots.model import Snapshot


@dataclass(frozen=True)
class ContainerChange:
    """One container present in both snapshots whose fields differ."""

    container: str
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class HostDiff:
    """The differences on one host."""

    host: str
    status: tuple[str | None, str | None] | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[ContainerChange, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """True when nothing changed on this host."""
        return not (self.status or self.added or self.removed or self.changed)


def _observed(state: HostState | None) -> dict[str, dict[str, Any]]:
    if state is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for c in state.containers:
        image = state.image(c.image_id)
        out[c.name] = {
            "image": c.config_image,
            "image_id": c.image_id,
            "state": c.status,
            "digests": sorted(image.repo_digests) if image else [],
            "started": c.started,
        }
    return out


def diff_hosts(old: HostResult | None, new: HostResult | None, host: str) -> HostDiff:
    """Compare one host's results; containers keyed by name. A side where the host was
    collected but not read (unreachable, an error) says nothing of its containers: only the
    status changed (they were listed as removed, or on the way back as added)."""
    from deepdiff import DeepDiff

    status_old = str(old.status) if old else None
    status_new = str(new.status) if new else None
    status = (status_old, status_new) if status_old != status_new else None
    if any(r is not None and r.state is None for r in (old, new)):
        return HostDiff(host, status)
    before = _observed(old.state if old else None)
    after = _observed(new.state if new else None)
    tree = DeepDiff(before, after, ignore_order=True, threshold_to_diff_deeper=0, view="tree")
    added: set[str] = set()
    removed: set[str] = set()
    touched: dict[str, set[str]] = {}
    for kind, levels in tree.items():
        for level in levels:
            path = level.path(output_format="list")
            # Both sides map container names to mappings with the same keys: a container is
            # added or removed whole (a path of one), or some of its fields changed.
            if len(path) == 1:
                (added if kind == "dictionary_item_added" else removed).add(str(path[0]))
            else:
                touched.setdefault(str(path[0]), set()).add(str(path[1]))
    changed = tuple(
        ContainerChange(name, {f: (before[name][f], after[name][f]) for f in sorted(fields)})
        for name, fields in sorted(touched.items())
    )
    return HostDiff(host, status, tuple(sorted(added)), tuple(sorted(removed)), changed)


def diff_snapshots(old: Snapshot, new: Snapshot) -> list[HostDiff]:
    """Per host present in either snapshot, what changed from ``old`` to ``new``."""
    names = sorted({h.host for h in old.hosts} | {h.host for h in new.hosts})
    return [diff_hosts(old.host(n), new.host(n), n) for n in names]
