"""``collect``: the snapshot ID on stdout (JSON on request), failed hosts on stderr."""

from __future__ import annotations

import json

from platformctl.clock import to_iso
from platformctl.collector.model import Collection
from platformctl.exitcodes import ExitCode
from platformctl.output.hosts import COLLECT, host_summary
from platformctl.output.text import clean


def collect_json(snapshot_id: int | None, collection: Collection, code: ExitCode) -> str:
    """``platformctl.collect/v1``."""
    return json.dumps(
        {
            "schema": "platformctl.collect/v1",
            "snapshot": snapshot_id,
            "taken_at": to_iso(collection.taken_at),
            "exit_code": int(code),
            "hosts": [host_summary(h, COLLECT) for h in collection.hosts],
        },
        indent=2,
    )


def collect_problems(collection: Collection) -> list[str]:
    """One line per host that could not be read, for stderr."""
    return [
        f"{clean(h.host)}: {h.status}: {clean(h.reason or '')}"
        for h in collection.hosts
        if not h.ok
    ]
