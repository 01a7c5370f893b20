"""When a host could not be collected: intervals of its change points with a non-ok status.

Pure: takes one host's change points (from the store) and returns the periods in which every
run that tried the host failed, so the report can draw a host lane and hatch the module lanes
on that host (docs/report.md). A change point is written only where a host's status or state
changed, so a failed status lasts until the host's next change point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from platformctl.collector.model import HostStatus
from platformctl.snapshots.model import ChangePoint


@dataclass(frozen=True)
class Outage:
    """A period in which ``host`` could not be collected; ``end`` None while it still cannot."""

    host: str
    status: HostStatus
    start: datetime
    end: datetime | None


def host_outages(points: Sequence[ChangePoint]) -> tuple[Outage, ...]:
    """The outages of one host, oldest first, from its change points (ordered by snapshot).

    Consecutive failures with the same status are one outage; a change of failure (say from
    ``unreachable`` to ``auth-failed``) starts a new one where the old one ends, so the lane
    shows both without a gap.
    """
    outages: list[Outage] = []
    current: Outage | None = None
    for point in points:
        if current is not None and point.status is current.status:
            continue  # same failure, new state ID impossible: nothing changed for the lane
        if current is not None:
            outages.append(Outage(current.host, current.status, current.start, point.taken_at))
            current = None
        if point.status is not HostStatus.OK:
            current = Outage(point.host, point.status, point.taken_at, None)
    if current is not None:
        outages.append(current)
    return tuple(outages)
