"""Accepted drift (docs/design.md, "Accepted drift"), on values: parsing ``drift_accepted``,
the rules that apply it at a given time, the exit code, the outputs and history."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platformctl.clock import from_iso
from platformctl.collector.model import HostResult, HostState, HostStatus, Image
from platformctl.declared.acceptance import AcceptanceProblem, parse_acceptance
from platformctl.declared.manifests import load_manifest
from platformctl.declared.model import Acceptance, CheckedModule, InvalidModule
from platformctl.differ.history import drift_since, module_history
from platformctl.differ.model import AcceptanceOutcome, CheckResult, ModuleStatus
from platformctl.exitcodes import for_report
from platformctl.output.drift_check import render_json, render_table, warning_lines
from platformctl.output.history import history_json, history_table
from platformctl.snapshots.model import ChangePoint
from tests.conftest import write_module
from tests.test_differ import (
    D303,
    D306,
    ID303,
    IMAGES,
    REPO,
    _report,
    host,
    make_container,
    make_module,
)

NOW = datetime(2026, 11, 27, 10, tzinfo=UTC)
REASON = "rolled back to 3.0.3 while 3.0.6 leaks memory (INC-42)"
ROLLED_BACK = make_container(config_image=f"{REPO}:3.0.3", image_id=ID303)


def acceptance(until: str = "2026-12-15", digest: str | None = None) -> Acceptance:
    parsed = parse_acceptance("m", {"reason": REASON, "until": until, "digest": digest})
    assert parsed is not None
    return parsed


def accepted_module(**kw: Any) -> CheckedModule:
    return make_module(accepted=acceptance(**kw))


def check(module: CheckedModule, *containers: Any, now: datetime = NOW, **kw: Any) -> Any:
    return _report([module], [host(*containers, **kw)], now)


# --- parsing -----------------------------------------------------------------------------


def manifest(tmp_path: Path, accepted: Any) -> Any:
    runtime = {
        "host": "rs2000",
        "orchestrator": "docker",
        "container": "honcho",
        "image_observed": f"{REPO}:3.0.6@{D306}",
        "drift_accepted": accepted,
    }
    return load_manifest(write_module(tmp_path, "honcho", runtime))


@pytest.mark.parametrize(
    ("until", "label", "expires"),
    [
        # A date holds through its whole UTC day.
        (date(2026, 12, 15), "2026-12-15", "2026-12-16T00:00:00Z"),
        ("2026-12-15", "2026-12-15", "2026-12-16T00:00:00Z"),
        ("2026-12-15T12:00:00Z", "2026-12-15T12:00:00Z", "2026-12-15T12:00:00Z"),
        ("2026-12-15T12:00:00+02:00", "2026-12-15T10:00:00Z", "2026-12-15T10:00:00Z"),
        ("2026-12-15T12:00", "2026-12-15T12:00:00Z", "2026-12-15T12:00:00Z"),  # no offset: UTC
        (datetime(2026, 12, 15, 12, tzinfo=UTC), "2026-12-15T12:00:00Z", "2026-12-15T12:00:00Z"),
    ],
)
def test_until_is_a_date_or_an_iso_time(
    tmp_path: Path, until: Any, label: str, expires: str
) -> None:
    module = manifest(tmp_path, {"reason": REASON, "until": until})
    assert isinstance(module, CheckedModule), module
    assert module.accepted == Acceptance(REASON, label, from_iso(expires), None)


def test_unquoted_yaml_timestamps_and_folded_reasons_are_read(tmp_path: Path) -> None:
    path = tmp_path / "modules" / "honcho" / "module.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "spec:\n  runtime:\n    host: rs2000\n    orchestrator: docker\n"
        f"    container: honcho\n    image_observed: {REPO}:3.0.6@{D306}\n"
        "    drift_accepted:\n      reason: >\n        rolled back\n        (INC-42)\n"
        f"      until: 2026-12-15T12:00:00+01:00\n      digest: {D303}\n"
    )
    module = load_manifest(path)
    assert isinstance(module, CheckedModule)
    assert module.accepted == Acceptance(
        "rolled back (INC-42)", "2026-12-15T11:00:00Z", from_iso("2026-12-15T11:00:00Z"), D303
    )


def test_an_unquoted_time_without_a_zone_is_utc_whatever_the_machine_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "JST-9")  # a POSIX zone: needs no tzdata
    time.tzset()
    try:
        module = manifest(tmp_path, {"reason": REASON, "until": datetime(2026, 12, 15, 12)})
    finally:
        monkeypatch.undo()
        time.tzset()
    assert isinstance(module, CheckedModule) and module.accepted is not None
    assert module.accepted.until == "2026-12-15T12:00:00Z"
    assert module.accepted.expires == datetime(2026, 12, 15, 12, tzinfo=UTC)


def test_no_drift_accepted_is_no_acceptance(tmp_path: Path) -> None:
    module = manifest(tmp_path, None)
    assert isinstance(module, CheckedModule) and module.accepted is None


@pytest.mark.parametrize(
    ("accepted", "fragment"),
    [
        ({"until": "2026-12-15"}, "drift_accepted.reason is required"),
        ({"reason": "  ", "until": "2026-12-15"}, "drift_accepted.reason is required"),
        ({"reason": 42, "until": "2026-12-15"}, "drift_accepted.reason is required"),
        ({"reason": REASON}, "drift_accepted.until is required"),
        ({"reason": REASON, "until": "2026-02-30"}, "is not a real date"),
        ({"reason": REASON, "until": "next week"}, "is not a date (2026-12-15) or an ISO time"),
        ({"reason": REASON, "until": "15.12.2026"}, "is not a date (2026-12-15) or an ISO time"),
        (
            {"reason": REASON, "until": 20261215},
            "until must be a date (2026-12-15) or an ISO time (2026-12-15T12:00:00Z), got int",
        ),
        ({"reason": REASON, "until": "2026-12-15", "digest": "sha256:abc"}, "is not a digest"),
        ({"reason": REASON, "until": "2026-12-15", "digest": D303[7:]}, "is not a digest"),
        (
            {"reason": REASON, "until": "2026-12-15", "digets": D303},
            "unknown key 'digets' (expected reason, until, digest)",
        ),
        ("until fixed", "drift_accepted must be a mapping with reason and until, got str"),
        (True, "drift_accepted must be a mapping"),
    ],
)
def test_a_malformed_acceptance_makes_the_module_invalid(
    tmp_path: Path, accepted: Any, fragment: str
) -> None:
    module = manifest(tmp_path, accepted)
    assert isinstance(module, InvalidModule)
    assert str(module.path) in module.problem and "spec.runtime.drift_accepted" in module.problem
    assert fragment in module.problem
    # Invalid counts as "no verdict": a bad acceptance never turns a drift into exit 0.
    report = _report([module], [host(ROLLED_BACK)])
    assert report.modules[0].status is ModuleStatus.INVALID and for_report(report) == 8


@pytest.mark.parametrize(
    "until",
    ["9999-12-31", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", date(9999, 12, 31)],
)
def test_an_until_at_the_end_of_the_calendar_is_a_problem_not_a_crash(until: Any) -> None:
    """9999-12-31 holds through its day, to a midnight after the last there is: the module is
    invalid with the key named, where the run stopped with a traceback."""
    with pytest.raises(AcceptanceProblem, match=r"m\.until .* past the dates there are"):
        parse_acceptance("m", {"reason": REASON, "until": until})


def test_an_unquoted_impossible_date_is_refused_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "modules" / "honcho" / "module.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "spec:\n  runtime:\n    host: rs2000\n    orchestrator: docker\n"
        f"    container: honcho\n    image_observed: {REPO}:3.0.6\n"
        "    drift_accepted:\n      reason: r\n      until: 2026-02-30\n"
    )
    module = load_manifest(path)
    assert isinstance(module, InvalidModule)
    assert module.problem == f"{path}: invalid YAML: day is out of range for month"


@given(st.one_of(st.text(max_size=40), st.dates(), st.datetimes(), st.integers(), st.none()))
def test_until_parser_gives_an_acceptance_or_one_problem(until: Any) -> None:
    try:
        parsed = parse_acceptance("m", {"reason": "r", "until": until})
    except AcceptanceProblem as exc:
        assert str(exc).startswith("m.until")
        return
    assert parsed is not None and parsed.expires.tzinfo is not None
    if isinstance(until, date) and not isinstance(until, datetime):
        assert parsed.until == until.isoformat()
        assert parsed.expires - timedelta(days=1) == datetime(
            until.year, until.month, until.day, tzinfo=UTC
        )


# --- the rules -----------------------------------------------------------------------------


def test_accepted_drift_exits_0_and_keeps_the_verdict_underneath() -> None:
    plain = check(make_module(), ROLLED_BACK)
    assert plain.modules[0].status is ModuleStatus.DRIFT and for_report(plain) == 2

    report = check(accepted_module(), ROLLED_BACK)
    (verdict,) = report.modules
    assert verdict.status is ModuleStatus.ACCEPTED and verdict.real_status is ModuleStatus.DRIFT
    assert verdict.acceptance is not None
    assert verdict.acceptance.outcome is AcceptanceOutcome.APPLIED
    assert for_report(report) == 0
    # The checks and the reason are the drift's, as they were.
    assert verdict.checks == plain.modules[0].checks
    assert verdict.checks[0].result is CheckResult.DRIFT
    assert verdict.reason == plain.modules[0].reason
    assert report.summary()[ModuleStatus.ACCEPTED] == 1


@pytest.mark.parametrize(
    ("containers", "status"),
    [
        ((), ModuleStatus.MISSING),
        ((make_container(status="exited", running=False),), ModuleStatus.STOPPED),
    ],
)
def test_missing_and_stopped_can_be_accepted(containers: Any, status: ModuleStatus) -> None:
    assert check(make_module(), *containers).modules[0].status is status
    report = check(accepted_module(), *containers)
    assert report.modules[0].status is ModuleStatus.ACCEPTED
    assert report.modules[0].real_status is status
    assert for_report(report) == 0


def test_unverifiable_can_be_accepted_by_its_image_id() -> None:
    local = (Image(IMAGES[0].id, (f"{REPO}:3.0.6",), ()),)
    assert check(make_module(), make_container(), images=local).modules[0].status is (
        ModuleStatus.UNVERIFIABLE
    )
    report = check(accepted_module(digest=IMAGES[0].id), make_container(), images=local)
    assert report.modules[0].status is ModuleStatus.ACCEPTED and for_report(report) == 0


def test_a_host_without_an_answer_is_not_accepted() -> None:
    down = HostResult("rs2000", HostStatus.UNREACHABLE, "refused")
    report = _report([accepted_module()], [down], NOW)
    (verdict,) = report.modules
    assert verdict.status is ModuleStatus.UNREACHABLE and for_report(report) == 5
    assert verdict.acceptance is not None
    assert verdict.acceptance.outcome is AcceptanceOutcome.NOT_JUDGED


def test_an_expired_acceptance_gives_the_real_status_back() -> None:
    module = accepted_module(until="2026-11-27")
    # The date holds through its whole day, and not a second longer.
    last_second = datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)
    assert check(module, ROLLED_BACK, now=last_second).modules[0].status is ModuleStatus.ACCEPTED
    report = check(module, ROLLED_BACK, now=datetime(2026, 11, 28, tzinfo=UTC))
    (verdict,) = report.modules
    assert verdict.status is ModuleStatus.DRIFT and for_report(report) == 2
    assert verdict.reason.startswith("acceptance expired on 2026-11-27; manifest-live")
    assert verdict.acceptance is not None
    assert verdict.acceptance.outcome is AcceptanceOutcome.EXPIRED
    timed = accepted_module(until="2026-11-27T09:00:00Z")
    assert check(timed, ROLLED_BACK).modules[0].status is ModuleStatus.DRIFT


def test_with_a_digest_only_that_live_image_is_accepted() -> None:
    same = check(accepted_module(digest=D303), ROLLED_BACK)
    assert same.modules[0].status is ModuleStatus.ACCEPTED and for_report(same) == 0

    other = "sha256:" + "05" * 32
    report = check(accepted_module(digest=other), ROLLED_BACK)
    (verdict,) = report.modules
    assert verdict.status is ModuleStatus.DRIFT and for_report(report) == 2
    assert verdict.reason.startswith(
        f"live changed since it was accepted (accepted {other[:19]}…, live {D303[:19]}…); "
    )
    assert verdict.acceptance is not None
    assert verdict.acceptance.outcome is AcceptanceOutcome.LIVE_CHANGED
    # The accepted image gone altogether is a change too.
    gone = check(accepted_module(digest=D303)).modules[0]
    assert gone.status is ModuleStatus.MISSING
    assert "live changed since it was accepted (accepted" in gone.reason
    assert "live no container)" in gone.reason


def test_the_digest_is_checked_against_the_containers_the_comparison_judges() -> None:
    leftover = make_container(id="2" * 64, name="old", status="exited", running=False)
    # Running ones only: a stopped leftover of another image does not undo the acceptance.
    mixed = check(accepted_module(digest=D303), ROLLED_BACK, leftover).modules[0]
    assert mixed.status is ModuleStatus.ACCEPTED
    # A paused or restarting replica beside it is judged, as the comparison judges it: on
    # another image it is not what was accepted.
    for state in ("paused", "restarting"):
        other = replace(leftover, status=state, running=True)
        assert check(accepted_module(digest=D303), ROLLED_BACK, other).modules[0].status is (
            ModuleStatus.DRIFT
        )
    # None running: the stopped ones are what is judged, and they run the accepted image.
    stopped = replace(ROLLED_BACK, status="exited", running=False)
    down = check(accepted_module(digest=D303), stopped).modules[0]
    assert down.status is ModuleStatus.ACCEPTED and down.real_status is ModuleStatus.STOPPED


def test_a_locally_built_live_image_is_shown_by_its_image_id() -> None:
    local = (Image(ID303, (f"{REPO}:3.0.3",), ()),)
    other = "sha256:" + "05" * 32
    (verdict,) = check(accepted_module(digest=other), ROLLED_BACK, images=local).modules
    assert verdict.reason.startswith(
        f"live changed since it was accepted (accepted {other[:19]}…, live {ID303[:19]}…); "
    )


def test_an_acceptance_on_an_ok_module_is_a_warning() -> None:
    report = check(accepted_module(), make_container())
    (verdict,) = report.modules
    assert verdict.status is ModuleStatus.OK and for_report(report) == 0
    assert verdict.acceptance is not None
    assert verdict.acceptance.outcome is AcceptanceOutcome.NOT_NEEDED
    (warning,) = verdict.warnings
    assert "drift_accepted is no longer needed" in warning and "module.yaml" in warning
    assert warning_lines(report) == [f"warning: honcho-api: {warning}"]
    assert f"    warning: {warning}" in render_table(report, for_report(report)).splitlines()
    (doc,) = json.loads(render_json(report, for_report(report)))["modules"]
    assert doc["warnings"] == [warning] and doc["accepted"]["outcome"] == "not-needed"
    # Expired and no longer needed: still only a warning, never a status.
    late = check(accepted_module(until="2026-01-01"), make_container())
    assert late.modules[0].status is ModuleStatus.OK and late.modules[0].warnings


# --- output ----------------------------------------------------------------------------------


def test_table_shows_accepted_with_the_reason_and_the_date() -> None:
    report = check(accepted_module(), ROLLED_BACK)
    lines = render_table(report, for_report(report)).splitlines()
    row = next(line for line in lines if line.startswith("honcho-api"))
    assert "ACCEPTED" in row and "honcho:3.0.3@" + D303[7:19] in row
    i = lines.index(row)
    assert lines[i + 1] == f"    accepted until 2026-12-15: {REASON}"
    assert lines[i + 2].startswith("    drift: manifest-live (apps-honcho-api-1): tag 3.0.6")
    assert "1 accepted" in lines[-1] and "exit 0" in lines[-1]


def test_json_keeps_the_acceptance_and_the_status_it_accepted() -> None:
    report = check(accepted_module(digest=D303), ROLLED_BACK)
    doc = json.loads(render_json(report, for_report(report)))
    assert doc["exit_code"] == 0 and doc["summary"]["accepted"] == 1
    (module,) = doc["modules"]
    assert module["status"] == "accepted" and module["accepted_status"] == "drift"
    assert module["accepted"] == {
        "reason": REASON,
        "until": "2026-12-15",
        "expires_at": "2026-12-16T00:00:00Z",
        "digest": D303,
        "outcome": "applied",
    }
    assert module["checks"][0]["result"] == "drift"
    assert module["checks"][0]["changes"]["tag"] == ["3.0.6", "3.0.3"]
    assert module["warnings"] == []
    plain = json.loads(render_json(check(make_module(), ROLLED_BACK), 2))["modules"][0]
    assert plain["accepted"] is None and plain["accepted_status"] is None


def test_acceptance_text_from_the_repository_is_cleaned_on_the_terminal() -> None:
    module = make_module(accepted=replace(acceptance(), reason="ok\x1b[2J\u202eevil"))
    table = render_table(check(module, ROLLED_BACK), 0)
    assert "\x1b" not in table and "\u202e" not in table and "ok\\x1b[2J\\u202eevil" in table


# --- history ---------------------------------------------------------------------------------

GOOD = HostState((make_container(),), IMAGES)
BAD = HostState((ROLLED_BACK,), IMAGES)
GONE = HostState((), IMAGES)
STATES = {1: GOOD, 2: BAD, 3: GONE}


def day(n: int) -> datetime:
    return datetime(2026, 11, n, tzinfo=UTC)


def point(n: int, state: int) -> ChangePoint:
    return ChangePoint(n, day(n), "rs2000", HostStatus.OK, state)


def test_history_keeps_an_accepted_drift_as_a_drift_interval_marked_accepted() -> None:
    points = [point(1, 1), point(2, 2), point(4, 1), point(6, 2)]
    history = module_history(accepted_module(), points, STATES, now=day(20))
    assert [(i.status, i.start, i.end, i.accepted) for i in history.intervals] == [
        (ModuleStatus.DRIFT, day(2), day(4), True),
        (ModuleStatus.DRIFT, day(6), None, True),
    ]
    assert history.status is ModuleStatus.ACCEPTED
    # drift_since is the start of the run, as without the acceptance.
    assert drift_since(history, ModuleStatus.DRIFT) == day(6)
    plain = module_history(make_module(), points, STATES, now=day(20))
    assert [(i.start, i.end) for i in plain.intervals] == [
        (i.start, i.end) for i in history.intervals
    ]
    assert not any(i.accepted for i in plain.intervals)

    doc = json.loads(history_json(day(1), day(20), [history]))
    assert [i["accepted"] for i in doc["modules"][0]["intervals"]] == [True, True]
    assert doc["modules"][0]["status"] == "accepted"
    table = history_table(day(1), day(20), [history])
    assert "    drift: 2026-11-02T00:00:00Z → 2026-11-04T00:00:00Z (accepted)" in table


def test_a_run_is_accepted_only_if_its_acceptance_held_until_it_was_last_seen() -> None:
    """Drift from the 2nd in the same state every day, fixed on the 10th: the change points
    are the 2nd and the 10th, and the 10th says when the drift was last seen (the 9th). An
    acceptance that ran out on the 4th did not cover the snapshots of the 5th to the 9th."""
    fixed_after_the_9th = replace(point(10, 1), before=day(9))
    points = [point(2, 2), fixed_after_the_9th]
    history = module_history(accepted_module(until="2026-11-04"), points, STATES, now=day(20))
    assert [i.accepted for i in history.intervals] == [False]
    # Last seen on the 4th, within the acceptance (nothing was collected after it): accepted.
    points = [point(2, 2), replace(point(10, 1), before=day(4))]
    history = module_history(accepted_module(until="2026-11-04"), points, STATES, now=day(20))
    assert [i.accepted for i in history.intervals] == [True]
    # A run of two not-ok states: the second, missing from the 5th, was last seen on the 6th,
    # when an acceptance until the 5th had run out.
    points = [point(2, 2), replace(point(5, 3), before=day(4)), replace(point(7, 1), before=day(6))]
    history = module_history(accepted_module(until="2026-11-05"), points, STATES, now=day(20))
    assert [i.accepted for i in history.intervals] == [False]


def test_history_marks_a_run_accepted_only_while_the_acceptance_held() -> None:
    points = [point(2, 2), point(4, 1), point(6, 2)]
    # Expired on the 3rd: the run of the 2nd was accepted, the open one from the 6th is not.
    history = module_history(accepted_module(until="2026-11-03"), points, STATES, now=day(20))
    assert [i.accepted for i in history.intervals] == [True, False]
    assert history.status is ModuleStatus.DRIFT
    # Still in force at the 6th, but expired by now: the open run is no longer accepted.
    history = module_history(accepted_module(until="2026-11-10"), points, STATES, now=day(20))
    assert [i.accepted for i in history.intervals] == [True, False]
    # A run that outlived its acceptance is not accepted, even after it closed.
    longer = [point(2, 2), point(5, 3), point(7, 1)]
    history = module_history(accepted_module(until="2026-11-03"), longer, STATES, now=day(20))
    assert [(i.status, i.accepted) for i in history.intervals] == [(ModuleStatus.MISSING, False)]
    history = module_history(accepted_module(until="2026-11-05"), longer, STATES, now=day(20))
    assert [(i.status, i.accepted) for i in history.intervals] == [(ModuleStatus.MISSING, True)]
    # A digest that is not the live one never marks a run.
    other = accepted_module(digest="sha256:" + "05" * 32)
    history = module_history(other, points, STATES, now=day(20))
    assert [i.accepted for i in history.intervals] == [False, False]
