"""The one serialisation of a host result; each command shows the part it needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from platformctl.collector.model import HostResult

SUMMARY = (
    "host",
    "status",
    "reason",
    "containers",
    "docker_version",
    "storage_driver",
    "duration_ms",
)
"""The host keys of ``drift-check --json``: the state reduced to a container count."""
COLLECT = ("host", "status", "reason", "containers", "duration_ms")
"""The host keys of ``collect --json``."""


def host_json(h: HostResult) -> dict[str, Any]:
    """Everything recorded about one host, containers and images included (``None`` for a host
    whose state could not be read)."""
    state = h.state
    return {
        **_scalars(h),
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


def host_summary(h: HostResult, keys: Iterable[str] = SUMMARY) -> dict[str, Any]:
    """:func:`host_json` with only ``keys``, in that order, and containers as a count."""
    # Only the scalars and a count: serialising every container just to count them would put
    # the whole state on drift-check's path for nothing.
    fields = {**_scalars(h), "containers": None if h.state is None else len(h.state.containers)}
    return {k: fields[k] for k in keys}


def _scalars(h: HostResult) -> dict[str, Any]:
    return {
        "host": h.host,
        "status": str(h.status),
        "reason": h.reason,
        "docker_version": h.docker_version,
        "storage_driver": h.storage_driver,
        "duration_ms": h.duration_ms,
    }
