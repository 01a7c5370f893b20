"""``drift-history``: ``platformctl.drift-history/v1`` and the table."""

from __future__ import annotations

import json
from datetime import datetime

from platformctl.clock import to_iso
from platformctl.differ.history import ModuleHistory
from platformctl.output.text import age, clean, duration, table


def history_json(since: datetime, now: datetime, items: list[ModuleHistory]) -> str:
    """``platformctl.drift-history/v1`` (README: "JSON output")."""
    return json.dumps(
        {
            "schema": "platformctl.drift-history/v1",
            "since": to_iso(since),
            "modules": [
                {
                    "module": h.module.name,
                    "status": str(h.status),
                    "drift_seconds": h.seconds_within(since, now),
                    "intervals": [
                        {
                            "status": str(i.status),
                            "from": to_iso(i.start),
                            "to": to_iso(i.end) if i.end else None,
                            "accepted": i.accepted,
                        }
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
                clean(h.module.name),
                str(h.status).upper(),
                duration(seconds) if seconds else "-",
                str(len(h.within(since))),
            )
        )
    header, *lines_ = table(("MODULE", "STATUS", "NOT_OK", "INTERVALS"), rows)
    lines = [f"since {to_iso(since)}", header]
    for h, line in zip(items, lines_, strict=True):
        lines.append(line)
        for i in h.within(since):
            end = to_iso(i.end) if i.end else f"now ({age(i.start, now)})"
            accepted = " (accepted)" if i.accepted else ""
            lines.append(f"    {i.status}: {to_iso(i.start)} → {end}{accepted}")
    return "\n".join(lines) + "\n"
