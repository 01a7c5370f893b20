"""Drift intervals and drift_since from change points, on values."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from platformctl.clock import from_iso
from platformctl.collector.model import HostResult, HostState, HostStatus, Image
from platformctl.differ.compare import judge
from platformctl.differ.history import drift_since, module_history
from platformctl.differ.model import ModuleStatus
from platformctl.snapshots.model import ChangePoint
from tests.test_differ import ID303, IMAGES, make_container, make_module

GOOD = HostState((make_container(),), IMAGES)
BAD = HostState(
    (make_container(config_image="ghcr.io/plastic-labs/honcho:3.0.3", image_id=ID303),), IMAGES
)
GONE = HostState((), IMAGES)
STATES = {1: GOOD, 2: BAD, 3: GONE}
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return from_iso(f"2026-11-{n:02d}T00:00:00Z")


def point(sid: int, state: int | None, status: HostStatus = HostStatus.OK) -> ChangePoint:
    return ChangePoint(sid, day(sid), "rs2000", status, state)


def test_intervals_open_close_and_take_the_worst_status() -> None:
    points = [point(1, 1), point(2, 2), point(3, 3), point(4, 2), point(5, 1), point(7, 2)]
    history = module_history(make_module(), points, STATES, now=NOW)
    assert [(i.status, i.start, i.end) for i in history.intervals] == [
        (ModuleStatus.MISSING, day(2), day(5)),
        (ModuleStatus.DRIFT, day(7), None),
    ]
    assert history.status is ModuleStatus.DRIFT
    assert drift_since(history, ModuleStatus.DRIFT) == day(7)


def test_uncollected_snapshots_neither_extend_nor_break_a_run() -> None:
    points = [
        point(1, 2),
        point(2, None, HostStatus.UNREACHABLE),
        point(3, 2),
        point(4, None, HostStatus.ERROR),
        point(6, 1),
    ]
    history = module_history(make_module(), points, STATES, now=NOW)
    assert [(i.start, i.end) for i in history.intervals] == [(day(1), day(6))]
    assert drift_since(history, ModuleStatus.OK) is None


def test_current_status_follows_the_newest_change_point() -> None:
    history = module_history(
        make_module(), [point(1, 2), point(2, None, HostStatus.AUTH_FAILED)], STATES, now=NOW
    )
    assert history.status is ModuleStatus.UNREACHABLE
    assert drift_since(history, ModuleStatus.UNREACHABLE) is None
    assert module_history(make_module(), [], STATES, now=NOW).status is ModuleStatus.NOT_COLLECTED


def test_seconds_within_a_window_clip_the_intervals() -> None:
    history = module_history(
        make_module(), [point(1, 2), point(3, 1), point(5, 2)], STATES, now=NOW
    )
    since = datetime(2026, 11, 2, tzinfo=UTC)
    now = datetime(2026, 11, 6, tzinfo=UTC)
    assert history.seconds_within(since, now) == 86400 * 2
    assert len(history.within(datetime(2026, 11, 4, tzinfo=UTC))) == 1


@given(
    st.sampled_from(["3.0.6", "3.0.3", "3.0.5"]), st.sampled_from([None, "other"]), st.booleans()
)
def test_history_judging_without_explanations_agrees_with_the_report(
    tag: str, repo: str | None, with_digest: bool
) -> None:
    image = f"ghcr.io/{repo or 'plastic-labs'}/honcho:{tag}"
    live = make_container(config_image=image)
    images = IMAGES if with_digest else (Image(IMAGES[0].id, (), ()),)
    result = HostResult("rs2000", HostStatus.OK, state=HostState((live,), images))
    full = judge(make_module(), result)
    quick = judge(make_module(), result, explain=False)
    assert full.status == quick.status
    assert [c.changes for c in full.checks] == [c.changes for c in quick.checks]
