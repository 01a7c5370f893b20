"""``platformctl report``: one self-contained HTML file with the current state and a timeline.

Jinja2 with autoescaping renders ``templates/report.html.j2``; this module turns the values of
:class:`platformctl.api.Overview` into plain view rows first, so the template only lays them
out. Statuses are rendered generically: each gets a CSS class ``s-<status>``, a text label and
a pattern from :data:`PALETTE`; a status missing from it (a new one) still renders, in grey
with its label, and needs no template change (docs/report.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from platformctl import __version__
from platformctl.clock import to_iso
from platformctl.declared.model import CheckedModule
from platformctl.differ.model import ModuleStatus, ModuleVerdict

# The table's cells, shared with drift-check's table so both show a module the same way.
from platformctl.output.drift_check import _declared_cell as declared_cell
from platformctl.output.drift_check import _live_cell as live_cell
from platformctl.output.text import age, clean, duration

if TYPE_CHECKING:
    from platformctl.api import Overview
    from platformctl.differ.history import ModuleHistory
    from platformctl.differ.outages import Outage

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Style:
    """How one status is drawn: a colour and a pattern, so hue is never the only cue."""

    colour: str
    pattern: str  # one of PATTERNS


# Okabe & Ito's palette, chosen to stay distinguishable with the common colour-vision
# deficiencies; every status also has its own pattern and a text label, and both survive
# printing in black and white.
PALETTE: dict[str, Style] = {
    "ok": Style("#009E73", "solid"),
    "drift": Style("#D55E00", "stripes"),
    "missing": Style("#CC79A7", "cross"),
    "stopped": Style("#E69F00", "dots"),
    "unverifiable": Style("#56B4E9", "hlines"),
    "accepted": Style("#0072B2", "vlines"),
    "unreachable": Style("#555555", "back"),
    "auth-failed": Style("#555555", "back"),
    "error": Style("#555555", "cross"),
    "not-collected": Style("#999999", "back"),
    "invalid": Style("#F0E442", "dots"),
    "skipped": Style("#BBBBBB", "solid"),
}
FALLBACK = Style("#777777", "hlines")
"""The style of a status :data:`PALETTE` does not know yet."""

# Each pattern is drawn in white over the status colour on an 8-pixel tile; "solid" draws
# nothing. The same tile fills the timeline's segments and the swatches of the legend and the
# table.
PATTERNS: dict[str, str] = {
    "solid": "",
    "stripes": '<path d="M-2 2l4-4M0 8l8-8M6 10l4-4" stroke="#fff" stroke-width="1.5"/>',
    "back": '<path d="M-2 6l4 4M0 0l8 8M6 -2l4 4" stroke="#fff" stroke-width="1.5"/>',
    "cross": '<path d="M0 4h8M4 0v8" stroke="#fff" stroke-width="1.5"/>',
    "dots": '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
    "hlines": '<path d="M0 2h8M0 6h8" stroke="#fff" stroke-width="1"/>',
    "vlines": '<path d="M2 0v8M6 0v8" stroke="#fff" stroke-width="1"/>',
}

TICK_STEPS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
)
MAX_TICKS = 8


@dataclass(frozen=True)
class Segment:
    """A drawn interval: position and width in percent of the window, its class and hover."""

    x: str
    width: str
    status: str
    label: str
    hover: str


@dataclass(frozen=True)
class Lane:
    """One row of the timeline: a module's or a host's segments and the host's gaps."""

    name: str
    host: str
    status: str
    label: str
    note: str
    segments: tuple[Segment, ...]
    gaps: tuple[Segment, ...]


@dataclass(frozen=True)
class Row:
    """One row of the current-state table."""

    module: str
    host: str
    status: str
    label: str
    declared: str
    declared_full: str
    live: str
    since: str
    since_full: str
    reason: str


@dataclass(frozen=True)
class Tick:
    """A time-axis mark at ``x`` percent."""

    x: str
    label: str


def status_class(status: str) -> str:
    """The CSS class of a status value: ``s-`` and the value, kept to ``[a-z0-9-]``."""
    return "s-" + "".join(c if c.isalnum() or c == "-" else "-" for c in status.lower())


def style_of(status: str) -> Style:
    """The colour and pattern of a status, :data:`FALLBACK` for one not in the palette."""
    return PALETTE.get(status, FALLBACK)


def status_css(statuses: Iterable[str]) -> str:
    """CSS for the given status values: the swatch colour and the SVG fill of each."""
    rules = []
    for status in sorted(set(statuses)):
        cls, style = status_class(status), style_of(status)
        rules.append(
            f".{cls}{{--c:{style.colour}}}"
            f".seg.{cls}{{fill:url(#p-{cls[2:]});stroke:{style.colour}}}"
        )
    return "\n".join(rules)


def pattern_defs(statuses: Iterable[str]) -> str:
    """SVG ``<pattern>`` elements, one per status value, with IDs ``p-<status>``."""
    out = []
    for status in sorted(set(statuses)):
        style = style_of(status)
        out.append(
            f'<pattern id="p-{status_class(status)[2:]}" width="8" height="8" '
            f'patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="{style.colour}"/>'
            f"{PATTERNS[style.pattern]}</pattern>"
        )
    return "".join(out)


MIN_WIDTH = 0.4
"""The narrowest segment drawn, in percent of the track (about 5 px of a 1280 px page)."""


def _pct(value: float) -> str:
    return f"{max(0.0, min(100.0, value)):.3f}".rstrip("0").rstrip(".") + "%"


class Scale:
    """Maps times in ``[start, end]`` to percent of the timeline's width."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end
        self.span = max(1.0, (end - start).total_seconds())
        self._iso: dict[datetime, str] = {}

    def iso(self, moment: datetime) -> str:
        """``to_iso``, remembered: many segments share their bounds (a host's outages)."""
        text = self._iso.get(moment)
        if text is None:
            text = self._iso[moment] = to_iso(moment)
        return text

    def segment(
        self, status: str, start: datetime, end: datetime | None, what: str
    ) -> Segment | None:
        """A drawn interval clipped to the window, or None when it lies outside."""
        stop = min(end or self.end, self.end)
        begin = max(start, self.start)
        if stop <= begin and not (end is None and begin <= self.end):
            return None
        # Drawn at least MIN_WIDTH wide, inside the track: a drift that began in the run
        # that is the window's end was a segment of no width, a clean lane beside a DRIFT row.
        width = max(MIN_WIDTH, (stop - begin).total_seconds() / self.span * 100)
        left = min((begin - self.start).total_seconds() / self.span * 100, 100 - width)
        until = self.iso(end) if end else "now (still open)"
        seconds = int(((end or self.end) - start).total_seconds())
        label = label_of(status)
        hover = f"{what}: {label} from {self.iso(start)} to {until} ({duration(seconds)})"
        return Segment(_pct(left), _pct(width), status_class(status), label, hover)

    def ticks(self) -> tuple[Tick, ...]:
        """Marks at round times: seconds to days by fixed steps, months by the calendar."""
        span = self.span
        if span > 60 * 86400:
            return self._month_ticks()
        step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS - 1), TICK_STEPS[-1])
        first = int(self.start.timestamp()) // step * step
        if first < self.start.timestamp():
            first += step
        fmt = "%b %d" if step >= 86400 else "%H:%M:%S" if step < 60 else "%H:%M"
        out = []
        moment = first
        previous_day = None
        while moment <= self.end.timestamp():
            when = datetime.fromtimestamp(moment, UTC)
            text = when.strftime(fmt)
            if step < 86400 and when.date() != previous_day:
                text = when.strftime("%b %d ") + text  # the date where it changes
                previous_day = when.date()
            out.append(Tick(_pct((moment - self.start.timestamp()) / span * 100), text))
            moment += step
        return tuple(out)

    def _month_ticks(self) -> tuple[Tick, ...]:
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        every = _month_step(months)
        year, month = self.start.year, self.start.month
        out: list[Tick] = []
        while True:
            month += 1
            if month > 12:
                year, month = year + 1, 1
            when = datetime(year, month, 1, tzinfo=UTC)
            if when > self.end:
                return tuple(out)
            if (year * 12 + month - 1) % every == 0:
                left = (when - self.start).total_seconds() / self.span * 100
                out.append(Tick(_pct(left), when.strftime("%b %Y")))


def _month_step(months: int) -> int:
    """Months between two ticks of an axis ``months`` long: 1, 2, 3 or 6 months, then 1, 2 or
    5 years times a power of ten (a store whose first snapshot a reset clock dated 1970 makes
    `--since 999999d` a window of decades)."""
    for every in (1, 2, 3, 6):
        if months / every <= MAX_TICKS - 1:
            return every
    years = 1
    while True:
        for every in (12 * years, 24 * years, 60 * years):
            if months / every <= MAX_TICKS - 1:
                return every
        years *= 10


def label_of(status: str) -> str:
    """The text label of a status (upper case), shown beside every colour."""
    return status.upper()


def order(overview: Overview) -> list[tuple[ModuleVerdict, ModuleHistory]]:
    """Modules currently not ok first, then by not-ok time in the window (most first), then
    by name."""
    by_name = {h.module.name: h for h in overview.histories}
    pairs = [(v, by_name[v.module.name]) for v in overview.current.modules]
    settled = (ModuleStatus.OK, ModuleStatus.SKIPPED)

    def key(pair: tuple[ModuleVerdict, ModuleHistory]) -> tuple[int, int, str]:
        verdict, history = pair
        seconds = history.seconds_within(overview.start, overview.now)
        return (0 if verdict.status not in settled else 1, -seconds, verdict.module.name)

    return sorted(pairs, key=key)


def _row(v: ModuleVerdict, now: datetime) -> Row:
    status = str(v.status)
    declared_full = v.module.declared_raw if isinstance(v.module, CheckedModule) else ""
    return Row(
        module=clean(v.module.name),
        host=clean(v.module.host or "-"),
        status=status_class(status),
        label=label_of(status),
        declared=clean(declared_cell(v)),
        declared_full=clean(declared_full),
        live=clean(live_cell(v)),
        since=age(v.drift_since, now) if v.drift_since else "",
        since_full=to_iso(v.drift_since) if v.drift_since else "",
        reason="" if v.status is ModuleStatus.OK else clean(v.reason),
    )


def _gaps(scale: Scale, outages: Sequence[Outage], what: str) -> tuple[Segment, ...]:
    out = []
    for o in outages:
        seg = scale.segment(str(o.status), o.start, o.end, f"{what} not collected")
        if seg is not None:
            out.append(seg)
    return tuple(out)


def lanes(overview: Overview) -> tuple[list[Lane], list[Lane], list[Row]]:
    """The module lanes, the host lanes and the table rows, in report order."""
    scale = Scale(overview.start, overview.now)
    # Every module on a host shares the host's gaps: draw them once per host.
    gaps = {h: _gaps(scale, o, clean(h)) for h, o in overview.outages.items()}
    modules, rows = [], []
    for verdict, history in order(overview):
        name = clean(verdict.module.name)
        host = verdict.module.host
        segments = []
        for interval in history.within(overview.start):
            seg = scale.segment(str(interval.status), interval.start, interval.end, name)
            if seg is not None:
                segments.append(seg)
        seconds = history.seconds_within(overview.start, overview.now)
        status = str(verdict.status)
        modules.append(
            Lane(
                name=name,
                host=clean(host or "-"),
                status=status_class(status),
                label=label_of(status),
                note=f"not ok {duration(seconds)}" if seconds else _unjudged(verdict),
                segments=tuple(segments),
                gaps=gaps.get(host or "", ()),
            )
        )
        rows.append(_row(verdict, overview.now))
    hosts = []
    seen = {h.host for h in overview.current.hosts}
    for host, outages in sorted(overview.outages.items()):
        shown = clean(host)
        down = [o for o in outages if o.end is None]
        status = str(down[0].status) if down else "ok" if host in seen else "not-collected"
        hosts.append(
            Lane(
                name=shown,
                host=shown,
                status=status_class(status),
                label=label_of(status),
                note="" if outages or host in seen else "in no snapshot",
                segments=(),
                gaps=gaps[host],
            )
        )
    return modules, hosts, rows


def _unjudged(verdict: ModuleVerdict) -> str:
    """The lane note of a module that has no timeline because it is never judged."""
    if verdict.status in (ModuleStatus.SKIPPED, ModuleStatus.INVALID):
        return f"not checked ({verdict.status})"
    return ""


def render_report(overview: Overview, root: Path) -> str:
    """The report as one HTML document (every style inline, nothing fetched)."""
    from jinja2 import Environment, PackageLoader
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("platformctl.output", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    modules, hosts, rows = lanes(overview)
    segment_statuses = {s.status[2:] for lane in modules for s in lane.segments}
    gap_statuses = {s.status[2:] for lane in [*modules, *hosts] for s in lane.gaps}
    row_statuses = {r.status[2:] for r in rows} | {h.status[2:] for h in hosts}
    every = segment_statuses | gap_statuses | row_statuses
    current = overview.current
    summary = [(label_of(str(s)), n) for s, n in current.summary().items() if n]
    legend = [(status_class(s), label_of(s)) for s in sorted(segment_statuses | gap_statuses)]
    return env.get_template(TEMPLATE).render(
        version=__version__,
        root=clean(str(root)),
        requested=to_iso(overview.requested),
        start=to_iso(overview.start),
        now=to_iso(overview.now),
        clipped=overview.start > overview.requested,
        window=duration(int((overview.now - overview.requested).total_seconds())),
        snapshot_id=current.snapshot_id,
        taken_at=to_iso(current.taken_at),
        snapshots=overview.snapshots_in_window,
        summary=summary,
        rows=rows,
        modules=modules,
        hosts=hosts,
        ticks=Scale(overview.start, overview.now).ticks(),
        legend=legend,
        css=Markup(status_css(every)),  # our constants only
        defs=Markup(pattern_defs(every)),  # our constants only
    )
