"""The HTML report on values: intervals drawn where they are, every string escaped, nothing
fetched from outside, statuses drawn generically (docs/report.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlite_utils import Database

from platformctl import api
from platformctl.clock import from_iso
from platformctl.collector.model import Collection, HostResult, HostState, HostStatus
from platformctl.declared.model import ExternalModule, Module
from platformctl.differ.model import ModuleStatus
from platformctl.differ.outages import Outage, host_outages
from platformctl.output.report import (
    FALLBACK,
    PALETTE,
    Scale,
    lanes,
    render_report,
    status_class,
    status_css,
    style_of,
)
from platformctl.snapshots.model import ChangePoint
from platformctl.snapshots.store import Store
from tests.conftest import Runner, write_module
from tests.test_cli import assert_one_line_error
from tests.test_differ import ID303, IMAGES, make_container, make_module

HOSTILE = "<img src=x onerror=alert(1)>"
GOOD = HostState((make_container(),), IMAGES)
BAD = HostState(
    (
        make_container(config_image="ghcr.io/plastic-labs/honcho:3.0.3", image_id=ID303),
        make_container(id="2" * 64, name=HOSTILE, service="other"),
    ),
    IMAGES,
)


def day(n: int) -> datetime:
    return datetime(2026, 11, n, tzinfo=UTC)


def point(n: int, status: HostStatus = HostStatus.OK, state: int | None = 1) -> ChangePoint:
    return ChangePoint(n, day(n), "rs2000", status, state if status is HostStatus.OK else None)


# -- host outages (pure) ----------------------------------------------------------------------


def test_outages_run_from_the_first_failed_point_to_the_next_change() -> None:
    points = [
        point(1),
        point(2, HostStatus.UNREACHABLE),
        point(4, HostStatus.AUTH_FAILED),
        point(5, state=2),
        point(8, HostStatus.ERROR),
    ]
    assert host_outages(points) == (
        Outage("rs2000", HostStatus.UNREACHABLE, day(2), day(4)),
        Outage("rs2000", HostStatus.AUTH_FAILED, day(4), day(5)),
        Outage("rs2000", HostStatus.ERROR, day(8), None),
    )
    assert host_outages([point(1), point(3, state=2)]) == ()
    assert host_outages([]) == ()
    # A repeated failure (the store writes none, but a caller might) continues the outage.
    repeated = [point(2, HostStatus.UNREACHABLE), point(3, HostStatus.UNREACHABLE), point(5)]
    assert host_outages(repeated) == (Outage("rs2000", HostStatus.UNREACHABLE, day(2), day(5)),)


# -- a store with a story ---------------------------------------------------------------------


def save(store: Store, n: int, result: HostResult) -> None:
    store.save(Collection(day(n), (result,)), "test")


def ok(state: HostState) -> HostResult:
    return HostResult("rs2000", HostStatus.OK, None, "24.0.7", "overlay2", 10, state)


def story() -> Store:
    """honcho-api drifts from day 2 to day 5; rs2000 is unreachable from day 6 to day 7."""
    store = Store(Database(memory=True))
    for n, result in (
        (1, ok(GOOD)),
        (2, ok(BAD)),
        (3, ok(BAD)),
        (5, ok(GOOD)),
        (6, HostResult("rs2000", HostStatus.UNREACHABLE, "connection refused")),
        (7, ok(GOOD)),
        (9, ok(GOOD)),
    ):
        save(store, n, result)
    return store


def modules() -> tuple[Module, ...]:
    hostile = make_module(name=HOSTILE, compose_service="other", image=f"nginx:{1}")
    return (make_module(), hostile)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, cls: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if cls in (a.get("class") or "").split()]


def render(window: timedelta = timedelta(days=8)) -> str:
    overview = api.overview(modules(), story(), window, now=day(9))
    return render_report(overview, Path("/src/platform"))


def test_the_drift_is_drawn_from_its_start_to_its_fix_and_the_outage_is_hatched() -> None:
    overview = api.overview(modules(), story(), timedelta(days=8), now=day(9))
    module_lanes, host_lanes, _ = lanes(overview)
    honcho = next(lane for lane in module_lanes if lane.name == "honcho-api")
    # The window is day 1 .. day 9 (8 days): drift from day 2 to day 5 is 12.5% .. 50%.
    assert [(s.x, s.width, s.status) for s in honcho.segments] == [("12.5%", "37.5%", "s-drift")]
    assert [(g.x, g.width) for g in honcho.gaps] == [("62.5%", "12.5%")]  # day 6 .. day 7
    (host,) = host_lanes
    assert [(g.x, g.width, g.status) for g in host.gaps] == [("62.5%", "12.5%", "s-unreachable")]
    doc = Elements(render_report(overview, Path("/p")))
    hover = " ".join(doc.text)
    assert "DRIFT from 2026-11-02T00:00:00Z to 2026-11-05T00:00:00Z (3d 0h)" in hover
    assert "UNREACHABLE from 2026-11-06T00:00:00Z to 2026-11-07T00:00:00Z (1d 0h)" in hover
    assert len(doc.having("host-lane")) == 1
    drawn = [a for a in doc.having("seg") if a.get("x") == "12.5%"]
    assert drawn and "s-drift" in str(drawn[0]["class"])


def test_one_row_and_one_lane_per_module_with_the_verdicts_of_replaying_latest() -> None:
    store = story()
    overview = api.overview(modules(), store, timedelta(days=30), now=day(9))
    replay = api.check(modules(), store, api.CollectOptions(), snapshot="latest")
    doc = Elements(render_report(overview, Path("/p")))
    rows = doc.having("module-row")
    assert len(rows) == len(doc.having("module-lane")) == 2
    shown = sorted(str(r["class"]).split()[1] for r in rows)
    assert shown == sorted(status_class(str(v.status)) for v in replay.modules)
    assert overview.current.modules == replay.modules


def test_a_hostile_name_is_text_and_creates_no_element() -> None:
    html = render()
    doc = Elements(html)
    assert not [t for t, _ in doc.tags if t in ("img", "script", "iframe", "object")]
    text = "".join(doc.text)
    assert HOSTILE in text  # as characters a reader sees
    assert HOSTILE not in html  # never as markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_nothing_is_fetched_from_outside() -> None:
    html = render()
    assert not re.search(r"https?://", html)
    doc = Elements(html)
    for _, attrs in doc.tags:
        for key in ("src", "href", "xlink:href", "action", "poster", "srcset"):
            value = attrs.get(key)
            assert value is None or value.startswith(("data:", "#")), (key, value)
    assert "@import" not in html and "<link" not in html and "<script" not in html
    assert re.findall(r"url\(([^)]*)\)", html) and all(
        u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", html)
    )


def test_modules_not_ok_now_come_first_then_by_time_not_ok() -> None:
    store = story()
    quiet = ExternalModule(name="a-quiet", path=Path("/p/modules/q/module.yaml"), host="edge")
    scope = (*modules(), quiet)
    at_day_9 = api.overview(scope, store, timedelta(days=30), now=day(9))
    module_lanes, _, rows = lanes(at_day_9)
    assert [lane.name for lane in module_lanes] == [r.module for r in rows]
    # The hostile module is missing now; honcho-api is ok now but drifted 3 days; a-quiet never.
    assert [(r.module, r.label) for r in rows] == [
        (HOSTILE, "MISSING"),
        ("honcho-api", "OK"),
        ("a-quiet", "SKIPPED"),
    ]
    save(store, 10, ok(BAD))  # honcho-api drifts again: both not ok now, the longer first
    _, _, rows = lanes(api.overview(scope, store, timedelta(days=30), now=day(11)))
    assert [(r.module, r.label) for r in rows] == [
        (HOSTILE, "DRIFT"),
        ("honcho-api", "DRIFT"),
        ("a-quiet", "SKIPPED"),
    ]


def test_every_status_has_a_class_a_label_and_a_pattern_and_a_new_one_falls_back() -> None:
    for status in ModuleStatus:
        assert str(status) in PALETTE, status
        assert status_class(str(status)) == f"s-{status}"
    assert style_of("brand-new") == FALLBACK
    css = status_css(["brand-new", "drift"])
    assert ".s-brand-new{--c:#777777}" in css and "url(#p-brand-new)" in css
    bad = ("drift", "missing", "stopped", "unverifiable", "accepted")
    assert len({PALETTE[s].pattern for s in bad}) == len(bad)  # not hue alone: each its pattern


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(days=1), r"^(Nov \d\d )?\d\d:\d\d$"),
        (timedelta(days=30), r"^Nov \d\d$|^Oct \d\d$"),
        (timedelta(days=365), r"^[A-Z][a-z]{2} \d{4}$"),
        (timedelta(seconds=40), r"^(Nov \d\d )?\d\d:\d\d:\d\d$"),
        # Decades and more: a store whose first snapshot a reset clock dated 1970, read with
        # `--since 999999d` (no step of up to five years fitted: a StopIteration traceback).
        (timedelta(days=365 * 57), r"^Jan \d{3}0$"),
        (timedelta(days=365 * 500), r"^Jan \d{3}0$"),
    ],
)
def test_ticks_are_round_and_few(span: timedelta, expected: str) -> None:
    end = from_iso("2026-11-27T10:17:00Z")
    ticks = Scale(end - span, end).ticks()
    assert 3 <= len(ticks) <= 8
    assert all(re.match(expected, t.label) for t in ticks), [t.label for t in ticks]
    positions = [float(t.x.rstrip("%")) for t in ticks]
    assert positions == sorted(positions) and positions[0] >= 0 and positions[-1] <= 100


def test_a_window_before_the_first_snapshot_starts_at_it() -> None:
    overview = api.overview(modules(), story(), timedelta(days=90), now=day(9))
    assert overview.start == day(1) and overview.requested == day(9) - timedelta(days=90)
    assert overview.snapshots_in_window == 7
    assert "the store begins at 2026-11-01T00:00:00Z" in render(timedelta(days=90))


def honcho_platform(tmp_path: Path) -> Path:
    """A platform of the one module the story's host runs."""
    root = tmp_path / "platform"
    write_module(
        root,
        "honcho-api",
        {
            "host": "rs2000",
            "orchestrator": "docker-compose",
            "compose_service": "honcho-api",
            "compose_project": "apps",
            "image_observed": make_module().declared_raw,
        },
    )
    return root


def test_the_command_writes_the_file_and_prints_its_path(run_cli: Runner, tmp_path: Path) -> None:
    root = honcho_platform(tmp_path)
    db = tmp_path / "store.db"  # run_cli's store
    missing = run_cli("report", "--root", str(root), "--output", str(tmp_path / "r.html"))
    assert (missing.code, missing.out) == (1, "")
    assert missing.err.startswith("platformctl: no snapshot store at") and not db.exists()

    store = Store.open(db)
    for n, state in ((1, GOOD), (2, BAD), (3, GOOD)):
        store.save(Collection(day(n), (ok(state),)), "test")
    target = tmp_path / "r.html"
    made = run_cli("report", "--root", str(root), "--output", str(target), "--since", "3650d")
    assert (made.code, made.out, made.err) == (0, f"{target}\n", "")
    doc = Elements(target.read_text())
    assert len(doc.having("module-lane")) == len(doc.having("module-row")) == 1
    assert "honcho-api: DRIFT from 2026-11-02T00:00:00Z to 2026-11-03T00:00:00Z" in " ".join(
        doc.text
    )
    nowhere = run_cli("report", "--root", str(root), "--output", str(tmp_path / "no" / "r.html"))
    assert nowhere.code == 1 and nowhere.err.count("\n") == 1 and "cannot write" in nowhere.err
    bad = run_cli("report", "--root", str(root), "--since", "soon")
    assert bad.code == 1 and "--since" in bad.err


def test_a_report_that_does_not_fit_on_the_disk_leaves_the_old_one_whole(
    run_cli: Runner, tmp_path: Path, small_disk: Path
) -> None:
    """The report was written in place: a full disk left the old report cut short."""
    from tests.test_store_damage import fill

    root = honcho_platform(tmp_path)
    store = Store.open(tmp_path / "store.db")  # run_cli's store
    store.save(Collection(day(1), (ok(BAD),)), "test")
    store.close()
    target = small_disk / "r.html"
    target.write_text("<p>last week's report</p>")
    fill(small_disk)
    result = run_cli("report", "--root", str(root), "--output", str(target))
    assert result.code == 1
    assert_one_line_error(result.err, f"cannot write {target}: No space left on device")
    assert target.read_text() == "<p>last week's report</p>"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "r.html"]


def test_a_drift_begun_at_the_end_of_the_window_is_drawn_not_a_clean_lane() -> None:
    """A drift that began in the run that ends the window had a segment of no width: the
    table said DRIFT beside a lane that looked clean (found by an outside review)."""
    end = from_iso("2026-11-27T10:00:00Z")
    scale = Scale(end - timedelta(days=7), end)
    seg = scale.segment("drift", end, None, "web")
    assert seg is not None
    left, width = (float(v.rstrip("%")) for v in (seg.x, seg.width))
    assert width >= 0.4 and left + width <= 100
    day_long = scale.segment("drift", end - timedelta(days=1), None, "web")
    assert day_long is not None and day_long.width == "14.286%"  # a real width is kept


def test_an_output_ending_in_a_slash_names_a_folder(run_cli: Runner, tmp_path: Path) -> None:
    """`--output out/` wrote a file called `out`, where `--metrics-file x/` is refused."""
    root = honcho_platform(tmp_path)
    result = run_cli("report", "--root", str(root), "--output", str(tmp_path / "out") + "/")
    assert result.code == 1
    assert_one_line_error(result.err, "names a folder; name a file")
    assert not (tmp_path / "out").exists()
