"""Notifications on change and Prometheus metrics, on values and an in-memory store.

The real delivery (apprise to a loopback receiver) and the metrics of a lab run are in
tests/integration/test_notify.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Database

from platformctl import api
from platformctl.collector.model import Collection, HostResult, HostState, HostStatus
from platformctl.declared.model import Acceptance, ExternalModule, InvalidModule, Module
from platformctl.differ import diff
from platformctl.differ.changes import Change, HostChange, ModuleChange, from_json, to_json
from platformctl.differ.model import ModuleStatus, Report
from platformctl.errors import DeliveryError
from platformctl.exitcodes import ExitCode
from platformctl.output.metrics import registry
from platformctl.output.notify import line, message, redact, title
from platformctl.snapshots.model import snapshot_status
from platformctl.snapshots.store import Store
from tests.test_differ import ID303, IMAGES, make_container, make_module

T0 = datetime(2026, 11, 27, 10, tzinfo=UTC)
GOOD = HostState((make_container(),), IMAGES)
BAD = HostState(
    (make_container(config_image="ghcr.io/plastic-labs/honcho:3.0.3", image_id=ID303),), IMAGES
)
GONE = HostState((), IMAGES)
DOWN = "down"

API = make_module()
WORKER = make_module(name="worker", compose_service="worker")
BROKEN = InvalidModule("broken", Path("/p/modules/broken/module.yaml"), "orchestrator: bad")
DNS = ExternalModule("dns", Path("/p/modules/dns/module.yaml"), host="edge")


class Runs:
    """Live runs against an in-memory store, one snapshot per call, a minute apart."""

    def __init__(self, modules: Sequence[Module] = (API,), declared: Sequence[Module] = ()) -> None:
        """``modules``: what each run is for; ``declared``: every module, when more."""
        self.store = Store(Database(memory=True))
        self.modules = tuple(modules)
        self.declared = tuple(declared)
        self.n = 0

    def begin(self) -> int:
        """What a run records of the store as it begins, for one that saves late."""
        return self.store.newest_id()

    def run(
        self, state: HostState | str, minute: int | None = None, begun: int | None = None
    ) -> Report:
        """One run; ``minute``: when it was taken, and ``begun``: what :meth:`begin` gave when
        it began, for runs that overlap (by default it begins as it saves)."""
        taken_at = T0 + timedelta(minutes=self.n if minute is None else minute)
        self.n += 1
        begun = self.begin() if begun is None else begun
        if state == DOWN:
            result = HostResult("rs2000", HostStatus.UNREACHABLE, "connection refused")
        else:
            assert isinstance(state, HostState)
            result = HostResult("rs2000", HostStatus.OK, state=state)
        collection = Collection(taken_at, (result,))
        sid = self.store.save(collection, "test", begun_after=begun)
        report = diff(
            self.modules,
            collection.hosts,
            snapshot_id=sid,
            taken_at=taken_at,
            snapshot_status=snapshot_status(collection.hosts),
            replay=False,
            now=taken_at,
        )
        return api.with_drift_since(report, self.store)

    def changes(
        self, state: HostState | Report | str, minute: int | None = None, begun: int | None = None
    ) -> list[tuple[str, str | None, str]]:
        """Run with notifications on (or notify about a run made before); what the message
        said."""
        channel = FakeChannel("probe")
        report = state if isinstance(state, Report) else self.run(state, minute, begun)
        api.notify(report, self.store, [channel], self.declared)
        assert len(channel.sent) <= 1
        return [
            (c.module if isinstance(c, ModuleChange) else f"host {c.host}", c.before, c.after)
            for c in (channel.sent[0] if channel.sent else [])
        ]


def test_first_run_on_an_empty_store_reports_every_module_that_is_not_ok() -> None:
    runs = Runs((API, WORKER, BROKEN, DNS))
    # honcho-api drifts, worker has no container, broken is invalid; dns (skipped) is fine.
    assert runs.changes(BAD) == [
        ("honcho-api", None, "drift"),
        ("worker", None, "missing"),
        ("broken", None, "invalid"),
    ]


def test_an_unchanged_situation_is_no_change_however_often_it_runs() -> None:
    runs = Runs((API, WORKER, BROKEN, DNS))
    runs.changes(BAD)
    assert runs.changes(BAD) == []
    assert runs.changes(BAD) == []


def test_a_fix_is_back_to_ok_and_a_new_problem_is_from_one_status_to_another() -> None:
    runs = Runs()
    assert runs.changes(GOOD) == []  # ok on the first run: nothing to say
    assert runs.changes(BAD) == [("honcho-api", "ok", "drift")]
    assert runs.changes(GONE) == [("honcho-api", "drift", "missing")]
    assert runs.changes(GOOD) == [("honcho-api", "missing", "ok")]


def test_drift_since_is_the_start_of_the_bad_run_not_the_last_change() -> None:
    runs = Runs()
    runs.changes(GOOD)
    runs.changes(BAD)
    (change,) = api.changes(runs.run(GONE), runs.store)
    assert change.since == T0 + timedelta(minutes=1)


def test_a_run_that_saves_after_one_begun_later_tells_nothing_old_and_moves_no_mark() -> None:
    """Overlapping runs: the one begun at minute 1 saw the container gone but saves after
    the one begun at minute 2, which saw it drift. Its older sight is no news: neither
    "ok → missing" (against minute 0) nor "drift → missing", and the next run still compares
    with the drift, so no "missing → drift" either."""
    runs = Runs()
    assert runs.changes(GOOD, minute=0) == []
    slow = runs.begin()
    assert runs.changes(BAD, minute=2) == [("honcho-api", "ok", "drift")]
    (mark, _) = runs.store.notified()["rs2000"]
    assert runs.changes(GONE, minute=1, begun=slow) == []
    assert runs.store.notified()["rs2000"][0] == mark
    assert runs.changes(BAD, minute=3) == []
    assert runs.changes(GOOD, minute=4) == [("honcho-api", "drift", "ok")]


def test_a_run_that_saves_after_a_later_run_without_notifications_tells_that_runs_news() -> None:
    """A `collect` (or a drift-check without --notify) begun after a notifying run saved
    first, and nobody told what it saw. The notifying run tells that newer sight, as of its
    time, once; its own older sight (the host unreachable) is no news."""
    runs = Runs()
    assert runs.changes(GOOD, minute=0) == []
    slow = runs.begin()
    runs.run(BAD, minute=2)  # saved, never notified
    late = runs.run(DOWN, minute=1, begun=slow)
    (change,) = api.changes(late, runs.store)
    assert change.since == T0 + timedelta(minutes=2)
    assert runs.changes(late) == [("honcho-api", "ok", "drift")]
    assert runs.changes(BAD, minute=3) == []
    assert runs.changes(GOOD, minute=4) == [("honcho-api", "drift", "ok")]


def test_a_newer_sight_told_by_a_late_run_keeps_its_drift_age_and_its_time() -> None:
    """The drift began at minute 1 (a run without notifications saw it); the newer sight a
    late run tells is from minute 3: the change says since minute 1. An acceptance that
    expired at 10:01:30 is judged at that sight's time, so its end is told once, then."""
    runs = Runs()
    runs.changes(GOOD, minute=0)
    runs.run(BAD, minute=1)
    slow = runs.begin()
    runs.run(BAD, minute=3)
    late = runs.run(BAD, minute=2, begun=slow)
    (change,) = api.changes(late, runs.store)
    assert change.since == T0 + timedelta(minutes=1)

    accepted = replace(
        API, accepted=Acceptance("INC-42", "x", T0 + timedelta(minutes=1, seconds=30))
    )
    runs = Runs((accepted,))
    assert runs.changes(BAD, minute=0) == []
    slow = runs.begin()
    runs.run(BAD, minute=2)  # past the acceptance's end; never notified
    assert runs.changes(BAD, minute=1, begun=slow) == [("honcho-api", "accepted", "drift")]
    assert runs.changes(BAD, minute=3) == []


def test_two_notifying_runs_overtaken_by_one_collect_tell_its_news_once() -> None:
    runs = Runs()
    runs.changes(GOOD, minute=0)
    first, second = runs.begin(), runs.begin()
    runs.run(BAD, minute=3)  # the collect, begun last, saved first
    assert runs.changes(GOOD, minute=1, begun=first) == [("honcho-api", "ok", "drift")]
    assert runs.changes(BAD, minute=2, begun=second) == []
    assert runs.changes(GOOD, minute=4) == [("honcho-api", "drift", "ok")]


def test_a_run_told_through_an_earlier_late_run_does_not_tell_itself_again() -> None:
    """The run begun at minute 2 saved first; the one begun at minute 1 saved after it and
    notified first, telling the newer sight; then the minute-2 run notifies."""
    runs = Runs()
    runs.changes(GOOD, minute=0)
    slow = runs.begin()
    newer = runs.run(BAD, minute=2)
    assert runs.changes(GONE, minute=1, begun=slow) == [("honcho-api", "ok", "drift")]
    assert runs.changes(newer) == []
    assert runs.changes(BAD, minute=3) == []


def test_notifying_runs_each_overlapped_by_a_later_collect_tell_every_change_once() -> None:
    """Every notifying run is overtaken by a collect begun after it: each still tells."""
    runs = Runs()
    told = []
    for minute, state in enumerate((GOOD, BAD, BAD, GONE, GOOD)):
        slow = runs.begin()
        runs.run(state, minute=2 * minute + 1)  # the collect, begun later, saved first
        told.extend(runs.changes(state, minute=2 * minute, begun=slow))
    assert told == [
        ("honcho-api", "ok", "drift"),
        ("honcho-api", "drift", "missing"),
        ("honcho-api", "missing", "ok"),
    ]


def test_a_late_run_whose_newer_sight_was_told_is_no_news_whatever_saved_after_it() -> None:
    """The run begun at minute 1 saves after the one begun at minute 2, which notified; a
    run that does not notify saves before the late one comes to notify. The sight told
    (minute 2) is newer than the late run's: nothing to say."""
    runs = Runs()
    runs.changes(GOOD, minute=0)
    slow = runs.begin()
    assert runs.changes(BAD, minute=2) == [("honcho-api", "ok", "drift")]
    late = runs.run(GONE, minute=1, begun=slow)
    runs.run(BAD, minute=3)
    assert runs.changes(late) == []
    assert runs.changes(BAD, minute=4) == []


def test_a_run_for_one_module_tells_the_other_modules_of_its_host() -> None:
    """The host's mark covers every module of it: a run for honcho-api alone, which reads the
    whole host, tells the worker's change, and no later run tells it again or loses it."""
    both = HostState(
        (make_container(), make_container(id="2" * 64, name="apps-worker-1", service="worker")),
        IMAGES,
    )
    whole = Runs((API, WORKER, BROKEN))
    assert whole.changes(both) == [("broken", None, "invalid")]
    one = Runs((API,), declared=(API, WORKER, BROKEN))
    one.store = whole.store
    one.n = whole.n
    assert one.changes(GOOD) == [("worker", "ok", "missing")]
    assert whole.changes(GOOD) == []


def test_a_mark_only_moves_forward() -> None:
    """A run that read the marks before another saved and notified must not move the mark
    back when it writes its own."""
    store = Store(Database(memory=True))
    for minute in range(5):  # snapshots 1 to 5: a mark past the newest is damaged
        result = HostResult("rs2000", HostStatus.OK, state=GOOD)
        store.save(Collection(T0 + timedelta(minutes=minute), (result,)), "test")
    earlier = T0 - timedelta(minutes=1)
    store.enqueue([], [], T0, {"rs2000": (5, T0)})
    store.enqueue([], [], earlier, {"rs2000": (3, earlier), "edge": (3, earlier)})
    assert store.notified() == {"rs2000": (5, T0), "edge": (3, earlier)}


def test_a_run_that_notifies_after_a_later_run_saved_and_notified_tells_nothing_old() -> None:
    """The run begun at minute 1 saved first, but the one begun at minute 2 saved and
    notified before the first one came to notify."""
    runs = Runs()
    assert runs.changes(GOOD, minute=0) == []
    first = runs.run(GONE, minute=1)  # saved, not notified yet
    assert runs.changes(BAD, minute=2) == [("honcho-api", "ok", "drift")]
    (mark, _) = runs.store.notified()["rs2000"]
    assert runs.changes(first) == []
    assert runs.store.notified()["rs2000"][0] == mark
    assert runs.changes(BAD, minute=3) == []


def test_runs_begun_in_one_second_keep_the_sight_saved_first() -> None:
    """Times are to the second: of two runs begun in the same one, the one that saved first
    during the other's run stands; the other, saving after it, is no news."""
    runs = Runs()
    assert runs.changes(GOOD, minute=0) == []
    slow = runs.begin()
    assert runs.changes(BAD, minute=1) == [("honcho-api", "ok", "drift")]
    assert runs.changes(GONE, minute=1, begun=slow) == []
    assert runs.changes(BAD, minute=2) == []


def test_a_snapshot_from_a_clock_running_ahead_does_not_stop_later_runs() -> None:
    """A run stamped a year ahead (a wrong clock, since set right) was saved before the next
    runs began: they still make history, notify and are the latest."""
    runs = Runs()
    runs.changes(GOOD, minute=0)
    assert runs.changes(BAD, minute=525_600) == [("honcho-api", "ok", "drift")]
    assert runs.changes(GONE, minute=1) == [("honcho-api", "drift", "missing")]
    report = runs.run(GOOD, minute=2)
    assert runs.changes(report) == [("honcho-api", "missing", "ok")]
    assert runs.store.load("latest").id == report.snapshot_id
    assert runs.store.superseded(report.snapshot_id or 0) == frozenset()


def test_a_run_that_saves_after_one_begun_later_dates_its_drift_from_its_own_time() -> None:
    """The host's history holds the later run's sight, not this one's: the drift this run
    saw began at the latest when it was taken, whether the later run saw the host fine or
    drifting only from its own time on."""
    for later in (GOOD, BAD):
        runs = Runs()
        runs.run(GOOD, minute=0)
        slow = runs.begin()
        runs.run(later, minute=2)
        (verdict,) = runs.run(BAD, minute=1, begun=slow).modules
        assert verdict.status is ModuleStatus.DRIFT
        assert verdict.drift_since == T0 + timedelta(minutes=1), later


def test_a_run_without_notifications_in_between_does_not_swallow_a_change() -> None:
    runs = Runs()
    runs.changes(GOOD)
    runs.run(BAD)  # someone runs drift-check by hand, without --notify
    assert runs.changes(BAD) == [("honcho-api", "ok", "drift")]


def test_turning_notifications_on_for_a_used_store_reports_what_is_not_ok() -> None:
    runs = Runs((API, WORKER))
    runs.run(BAD)
    runs.run(BAD)
    assert runs.changes(BAD) == [("honcho-api", None, "drift"), ("worker", None, "missing")]


def test_an_acceptance_that_expires_between_two_runs_is_a_change() -> None:
    accepted = replace(
        API,
        accepted=Acceptance(
            "rolled back (INC-42)",
            "2026-11-27T10:01:30Z",
            T0 + timedelta(minutes=1, seconds=30),
        ),
    )
    runs = Runs((accepted,))
    assert runs.changes(BAD) == []  # accepted: fine, nothing to say on a first run
    assert runs.changes(BAD) == []  # still accepted at 10:01
    assert runs.changes(BAD) == [("honcho-api", "accepted", "drift")]  # expired at 10:01:30


def test_a_host_going_down_and_coming_back_is_one_line_each_not_one_per_module() -> None:
    runs = Runs((API, WORKER))
    runs.changes(BAD)
    assert runs.changes(DOWN) == [("host rs2000", "ok", "unreachable")]
    assert runs.changes(DOWN) == []
    # Back as it was before the outage: modules are compared with the last collected state.
    assert runs.changes(BAD) == [("host rs2000", "unreachable", "ok")]
    runs.changes(DOWN)
    assert runs.changes(GOOD) == [
        ("host rs2000", "unreachable", "ok"),
        ("honcho-api", "drift", "ok"),
    ]


def test_a_host_never_collected_before_reports_its_modules_when_it_is_first_read() -> None:
    runs = Runs((API, WORKER))
    assert runs.changes(DOWN) == [("host rs2000", None, "unreachable")]
    assert runs.changes(BAD) == [
        ("host rs2000", "unreachable", "ok"),
        ("honcho-api", None, "drift"),
        ("worker", None, "missing"),
    ]


@dataclass
class FakeChannel:
    """A channel that records what it was sent, and fails while ``down``."""

    destination: str
    label: str = "json://127.0.0.1:1"
    down: bool = False
    sent: list[list[Change]] = field(default_factory=list)

    def send(self, changes: Sequence[Change]) -> None:
        if self.down:
            raise DeliveryError(f"notification to {self.label} failed")
        self.sent.append(list(changes))


def sent_lines(channel: FakeChannel) -> list[list[str]]:
    return [[c.module if isinstance(c, ModuleChange) else c.host for c in m] for m in channel.sent]


def test_one_message_per_run_and_nothing_when_nothing_changed() -> None:
    runs = Runs((API, WORKER))
    channel = FakeChannel("a")
    assert api.notify(runs.run(BAD), runs.store, [channel]) == []
    assert api.notify(runs.run(BAD), runs.store, [channel]) == []
    assert sent_lines(channel) == [["honcho-api", "worker"]]


def test_a_failed_delivery_keeps_the_changes_for_the_next_message() -> None:
    runs = Runs()
    channel = FakeChannel("a", down=True)
    assert api.notify(runs.run(GOOD), runs.store, [channel]) == []  # nothing to send
    failures = api.notify(runs.run(BAD), runs.store, [channel])
    assert [(f.label, f.changes) for f in failures] == [("json://127.0.0.1:1", 1)]
    channel.down = False
    api.notify(runs.run(GOOD), runs.store, [channel])
    (msg,) = channel.sent
    assert [(c.before, c.after) for c in msg] == [("ok", "drift"), ("drift", "ok")]
    # Delivered: the outbox is empty, and an unchanged run sends nothing.
    api.notify(runs.run(GOOD), runs.store, [channel])
    assert len(channel.sent) == 1


def test_each_destination_gets_what_it_missed_and_only_that() -> None:
    runs = Runs()
    up, down = FakeChannel("up"), FakeChannel("down", down=True)
    api.notify(runs.run(GOOD), runs.store, [up, down])
    api.notify(runs.run(BAD), runs.store, [up, down])
    down.down = False
    api.notify(runs.run(GONE), runs.store, [up, down])
    assert [[c.after for c in m] for m in up.sent] == [["drift"], ["missing"]]
    assert [[c.after for c in m] for m in down.sent] == [["drift", "missing"]]


def test_the_same_url_twice_gets_one_message() -> None:
    runs = Runs()
    first, again = FakeChannel("same"), FakeChannel("same")
    api.notify(runs.run(BAD), runs.store, [first, again])
    assert len(first.sent) + len(again.sent) == 1


def test_a_replay_never_notifies_and_leaves_the_outbox_alone() -> None:
    runs = Runs()
    runs.run(GOOD)
    channel = FakeChannel("a", down=True)
    api.notify(runs.run(BAD), runs.store, [channel])
    snap = runs.store.load(2)
    replay = diff(
        runs.modules,
        snap.hosts,
        snapshot_id=snap.id,
        taken_at=snap.taken_at,
        snapshot_status=snap.status,
        replay=True,
        now=snap.taken_at,
    )
    channel.down = False
    assert api.changes(replay, runs.store) == ()
    assert api.notify(replay, runs.store, [channel]) == []
    assert channel.sent == []
    assert len(runs.store.pending("a")) == 1


def test_the_title_counts_changes_and_names_the_host() -> None:
    drifted = ModuleChange("honcho-api", "rs2000", ModuleStatus.OK, ModuleStatus.DRIFT, T0, "x")
    fixed = ModuleChange("web", "rs2000", ModuleStatus.DRIFT, ModuleStatus.OK, T0, "matches")
    assert title([drifted, fixed]) == "platformctl: 1 module drifted on rs2000, 1 back to ok"
    elsewhere = ModuleChange("db", "rs3000", None, ModuleStatus.MISSING, T0, "no container")
    down = HostChange("edge", HostStatus.OK, HostStatus.UNREACHABLE, T0, "refused", 3)
    assert title([drifted, fixed, elsewhere, down]) == (
        "platformctl: host edge unreachable, 1 module drifted on rs2000, "
        "1 missing on rs3000, 1 back to ok on rs2000"
    )
    assert message([fixed]).kind == "success" and message([fixed, drifted]).kind == "warning"


def test_a_line_says_module_host_before_after_since_and_why() -> None:
    change = ModuleChange(
        "honcho-api",
        "rs2000",
        ModuleStatus.OK,
        ModuleStatus.DRIFT,
        T0,
        "manifest-live (apps-honcho-api-1): tag 3.0.6 → 3.0.3",
    )
    assert line(change) == (
        "honcho-api on rs2000: ok → drift since 2026-11-27T10:00:00Z"
        " — manifest-live (apps-honcho-api-1): tag 3.0.6 → 3.0.3"
    )
    down = HostChange("edge", None, HostStatus.UNREACHABLE, T0, "connection refused", 2)
    assert line(down) == (
        "host edge: first check → unreachable since 2026-11-27T10:00:00Z"
        " — 2 modules unchecked: connection refused"
    )


def test_host_strings_are_sanitized_in_title_and_body() -> None:
    evil = "rs\x1b[2J2000\nforged line"
    change = ModuleChange("m\u202e", evil, ModuleStatus.OK, ModuleStatus.DRIFT, T0, "r\x07")
    msg = message([change, HostChange(evil, None, HostStatus.ERROR, T0, "e\x1b", 1)])
    for text in (msg.title, msg.body):
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\n" not in msg.title and len(msg.body.splitlines()) == 2
    assert "rs\\x1b[2J2000\\nforged line" in msg.body


HOSTILE = ModuleChange(
    "[docs](http://phish.example)",
    "rs2000",
    ModuleStatus.OK,
    ModuleStatus.DRIFT,
    T0,
    "image **x** <b>y</b> `z` @everyone @here",
)


def test_for_apps_that_render_markdown_written_text_stays_text() -> None:
    """Discord or Mattermost render Markdown in plain text: a name or reason a repository or
    host wrote must not become a link, markup or a mention that pages a whole channel."""
    body = message([HOSTILE], markdown=True).body
    assert "\\[docs\\]\\(http://phish.example\\)" in body
    assert "\\*\\*x\\*\\*" in body and "\\<b\\>" in body and "\\`z\\`" in body
    assert "@everyone" not in body and "@here" not in body
    assert "@\u200beveryone" in body
    # Elsewhere the text stays as written.
    assert "[docs](http://phish.example)" in message([HOSTILE]).body


def test_a_mattermost_message_through_apprise_is_escaped_and_a_json_one_is_not() -> None:
    """Real deliveries through apprise's own plugins, to a receiver on loopback."""
    from platformctl.output.notify import AppriseChannel
    from tests.integration.test_notify import Receiver

    receiver = Receiver()
    receiver.start()
    try:
        AppriseChannel(f"mmost://127.0.0.1:{receiver.port}/token123").send([HOSTILE])
        AppriseChannel(receiver.url()).send([HOSTILE])
        (chat, webhook) = receiver.take()
    finally:
        receiver.stop()
    assert chat["path"] == "/hooks/token123"
    assert "\\[docs\\]\\(http://phish.example\\)" in chat["text"]
    assert "@everyone" not in chat["text"]
    assert "[docs](http://phish.example)" in webhook["message"]


def test_a_service_apprise_escapes_markdown_for_is_escaped_once() -> None:
    """Rocket.Chat takes Markdown and apprise (2.3 and later) escapes our text for it: escaped
    by us too, every name arrived with stray backslashes. Only the mentions are ours."""
    from platformctl.output.notify import AppriseChannel
    from tests.integration.test_notify import Receiver

    receiver = Receiver()
    receiver.start()
    try:
        AppriseChannel(f"rocket://abc123%2Fdef456@127.0.0.1:{receiver.port}/%23ops").send([HOSTILE])
        (chat,) = receiver.take()
    finally:
        receiver.stop()
    assert chat["path"] == "/hooks/abc123/def456"
    assert "\\[docs\\]\\(http://phish" in chat["text"]
    assert "\\\\" not in chat["text"]  # no backslash escaped again
    assert "@everyone" not in chat["text"] and "@\u200beveryone" in chat["text"]


def test_a_title_names_hosts_cleaned_never_escaped() -> None:
    """Zulip shows the title as its topic, plain text: `web\\_1` there was our escape."""
    change = ModuleChange("m", "web_1", ModuleStatus.OK, ModuleStatus.DRIFT, T0, "r")
    assert message([change], markdown=True).title == "platformctl: 1 module drifted on web_1"


def test_an_apprise_that_passes_markdown_as_it_is_gets_escaping_only_where_it_is_read() -> None:
    """apprise before 2 hands plain text to a Markdown service as it is. The apps known to
    render CommonMark get our backslashes; Slack, whose markup takes none, gets only its
    mentions broken (it showed `web\\_1` and four backslashes for one)."""
    import apprise
    import apprise.conversion

    from platformctl.output import notify

    class Old:  # a plugin of an apprise without per-send formats
        notify_format = apprise.NotifyFormat.MARKDOWN

    unchanged = pytest.MonkeyPatch()
    unchanged.setattr(apprise.conversion, "convert_between", lambda f, t, content: content)
    try:
        assert notify._presenter(apprise, Old(), "slack") is notify._mention_clean
        assert notify._presenter(apprise, Old(), "rocket") is notify._markdown_clean
    finally:
        unchanged.undo()
    assert notify._presenter(apprise, Old(), "rocket") is notify._mention_clean


@pytest.mark.parametrize(
    "url",
    ["zulip://bot@example/" + "a" * 32, "ryver://example/ckhrjW8w672m6HG", "mmost://h/token"],
)
def test_apps_that_render_markdown_in_plain_text_get_it_escaped(url: str) -> None:
    """Zulip (whose @**all** pages a whole stream) and Ryver render Markdown in the plain
    text apprise hands them as it is; they cannot be reached on loopback (their plugins send
    to the service's own host), so the choice itself is checked."""
    from platformctl.output.notify import AppriseChannel, _markdown_clean

    assert AppriseChannel(url)._shown is _markdown_clean


@given(
    st.text(),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.sampled_from(ModuleStatus)),
    st.sampled_from(ModuleStatus),
    st.integers(0, 2**31),
    st.text(),
)
def test_a_module_change_survives_the_outbox(
    name: str,
    host: str | None,
    before: ModuleStatus | None,
    after: ModuleStatus,
    seconds: int,
    reason: str,
) -> None:
    change = ModuleChange(name, host, before, after, datetime.fromtimestamp(seconds, UTC), reason)
    assert from_json(to_json(change)) == change


def test_an_unreadable_outbox_entry_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        from_json('{"kind": "module", "after": "from-the-future"}')
    # A field of another type than this version writes: an AttributeError traceback.
    typed = '{"kind": "module", "module": "m", "host": "h", "before": null, "after": "ok",'
    with pytest.raises(ValueError):
        from_json(typed + ' "since": 5, "reason": ""}')
    with pytest.raises(ValueError):
        from_json(typed + ' "since": "0001-01-01T00:00:00+14:00", "reason": ""}')
    host = HostChange("h", HostStatus.OK, HostStatus.ERROR, T0, "docker: permission denied", 4)
    assert from_json(to_json(host)) == host


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("json://user:s3cret@127.0.0.1:8080/hook?token=abc", "json://127.0.0.1:8080"),
        ("ntfys://user:pw@ntfy.example/topic", "ntfys://ntfy.example"),
    ],
)
def test_a_channel_label_never_carries_credentials(url: str, label: str) -> None:
    from platformctl.output.notify import AppriseChannel

    channel = AppriseChannel(url)
    assert channel.label == label
    assert "s3cret" not in channel.destination and "pw" not in channel.label


def test_a_token_in_the_host_part_is_masked() -> None:
    from platformctl.output.notify import AppriseChannel

    token = "123456789:AAHsecretsecretsecretsecretsecret"
    label = AppriseChannel(f"tgram://{token}/12345").label
    assert label.startswith("tgram://") and "secret" not in label
    assert redact("mailto://u:p@mail.example:587/x") == "mailto://mail.example:587"


def test_metrics_have_a_series_per_status_and_help_and_type() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    runs = Runs((API, WORKER, BROKEN))
    runs.run(GOOD)
    report = runs.run(BAD)
    text = generate_latest(registry(report, ExitCode.PARTIAL, 1.5)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    status = families["platformctl_module_status"]
    assert status.type == "gauge" and status.documentation
    series = {(s.labels["module"], s.labels["status"]): s.value for s in status.samples}
    assert len(series) == 3 * len(ModuleStatus)
    assert {k for k, v in series.items() if v == 1} == {
        ("honcho-api", "drift"),
        ("worker", "missing"),
        ("broken", "invalid"),
    }
    since = families["platformctl_module_drift_since_timestamp_seconds"].samples
    assert {(s.labels["module"], s.value) for s in since} == {
        ("honcho-api", (T0 + timedelta(minutes=1)).timestamp()),
        ("worker", T0.timestamp()),  # missing from the first run on
    }
    assert [(s.labels, s.value) for s in families["platformctl_host_up"].samples] == [
        ({"host": "rs2000"}, 1.0)
    ]
    assert families["platformctl_exit_code"].samples[0].value == 8
    assert families["platformctl_run_duration_seconds"].samples[0].value == 1.5
    assert families["platformctl_last_run_timestamp_seconds"].samples[0].value == (
        report.taken_at.timestamp()
    )
    for name in families:
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text


def test_metric_labels_are_sanitized() -> None:
    from prometheus_client import generate_latest

    evil = make_module(name="api\x1b]0;pwned\x07", host="rs\u202e2000")
    report = diff(
        (evil,),
        (HostResult("rs\u202e2000", HostStatus.UNREACHABLE, "x"),),
        snapshot_id=1,
        taken_at=T0,
        snapshot_status=snapshot_status(()),
        replay=False,
        now=T0,
    )
    text = generate_latest(registry(report, ExitCode.UNREACHABLE, 0.1)).decode()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert 'host="rs\\\\u202e2000"' in text


def test_version_and_help_load_neither_apprise_nor_prometheus_client() -> None:
    code = (
        "import sys; from platformctl.cli import main\n"
        "for argv in (['--version'], ['drift-check', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('apprise', 'prometheus_client', 'requests') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_v2_store_gains_the_outbox_and_keeps_its_snapshots(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v2.db"
    old = Store.open(path)
    sid = old.save(Collection(T0, (HostResult("rs2000", HostStatus.OK, state=BAD),)), "0.1")
    old.db.conn.close()
    conn = sqlite3.connect(path)
    # What v3 and v4 added: the rest is a v2 store.
    conn.execute("DROP TABLE outbox")
    conn.execute("DROP TABLE notified_hosts")
    conn.execute("ALTER TABLE snapshot_hosts DROP COLUMN superseded")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()

    store = Store.open(path)
    assert store.schema_version() == 4
    assert store.load(sid).hosts[0].state == BAD
    store.enqueue(["a", "b"], ["one", "two"], T0, {"rs2000": (sid, T0)})
    assert store.notified() == {"rs2000": (sid, T0)}
    assert [body for _, body in store.pending("a")] == ["one", "two"]
    store.delivered(i for i, _ in store.pending("a"))
    assert store.pending("a") == [] and len(store.pending("b")) == 2


def test_the_readme_alerting_rules_are_valid_and_use_series_we_write(tmp_path: Path) -> None:
    import re
    import shutil

    from prometheus_client import generate_latest

    from tests.conftest import IN_CI

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (rules,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "groups:" in b]
    runs = Runs((API, WORKER))
    written = generate_latest(registry(runs.run(BAD), ExitCode.DRIFT, 1.0)).decode()
    for name in set(re.findall(r"platformctl_[a-z_]+", rules)):
        assert f"\n{name}" in written, name
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("promtool missing in CI (scripts/setup installs prometheus)")
        pytest.skip("promtool not installed")
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    check = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 3 rules found" in check.stdout


def test_two_notifying_runs_at_the_same_moment_send_a_change_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs saw the same drift and notify at once, each on its own connection: the
    second waits for the first to have moved the marks, then has nothing to say."""
    import threading

    db = tmp_path / "store.db"
    runs = Runs()
    runs.store = Store.open(db)
    runs.changes(GOOD)
    reports = [runs.run(BAD), runs.run(BAD)]
    runs.store.close()
    computed, go = threading.Event(), threading.Event()
    told = api._told

    def slow_told(*args: object, **kwargs: object) -> object:
        result = told(*args, **kwargs)  # type: ignore[arg-type]
        if threading.current_thread().name == "first":
            computed.set()
            go.wait(10)
        return result

    monkeypatch.setattr(api, "_told", slow_told)
    channels = [FakeChannel("a"), FakeChannel("a")]

    def notify(index: int) -> None:
        store = Store.open(db)
        try:
            api.notify(reports[index], store, [channels[index]])
        finally:
            store.close()

    first = threading.Thread(target=notify, args=(0,), name="first")
    first.start()
    assert computed.wait(10)
    second = threading.Thread(target=notify, args=(1,), name="second")
    second.start()
    second.join(1.0)  # without the transaction it would compute and send by now
    go.set()
    first.join(10)
    second.join(10)
    assert [len(c.sent) for c in channels] == [1, 0]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("taken_at", "garbage"),
        ("taken_at", 7),
        ("snapshot_id", "x"),
        ("snapshot_id", 1.5),
        # Past the newest snapshot: every run looked told already, or (with a damaged time
        # beside it) the mark was never replaced and the change was told on every run.
        ("snapshot_id", 1_000_000),
        ("snapshot_id = 1000000, taken_at", "garbage"),
    ],
)
def test_a_damaged_notification_mark_is_told_again_and_replaced(column: str, value: object) -> None:
    """A mark edited by hand ended every notifying run in a traceback after its table was
    printed (exit 1 where the table said 2). It counts as none: the host's changes are told
    again, and the run's own mark replaces it."""
    runs = Runs()
    channel = FakeChannel("a")
    api.notify(runs.run(BAD), runs.store, [channel])
    runs.store.conn.execute(f"UPDATE notified_hosts SET {column} = ?", (value,))
    runs.store.conn.commit()
    assert runs.store.notified() == {}
    api.notify(runs.run(BAD), runs.store, [channel])
    assert sent_lines(channel) == [["honcho-api"], ["honcho-api"]]
    sid = runs.store.newest_id()
    assert runs.store.notified() == {"rs2000": (sid, T0 + timedelta(minutes=1))}
    api.notify(runs.run(BAD), runs.store, [channel])
    assert len(channel.sent) == 2  # told once again, then quiet


def test_a_drift_seen_by_hand_is_told_when_the_next_notifying_run_finds_the_host_down() -> None:
    """The drift a run by hand saw, then a notifying run that finds the host down: that
    drift is told with the outage, judged when it was seen. The host's mark moved past the
    untold read, and the next run that read the host compared its modules with it: the drift
    was never told (found by an outside review)."""
    runs = Runs()
    assert runs.changes(GOOD) == []
    runs.run(BAD)  # by hand: no notifications
    assert runs.changes(DOWN) == [
        ("honcho-api", "ok", "drift"),
        ("host rs2000", "ok", "unreachable"),
    ]
    assert runs.changes(BAD) == [("host rs2000", "unreachable", "ok")]
    assert runs.changes(BAD) == []


def test_a_host_down_for_two_notifying_runs_tells_an_untold_read_once() -> None:
    runs = Runs()
    runs.changes(GOOD)
    runs.run(BAD)
    assert len(runs.changes(DOWN)) == 2
    assert runs.changes(DOWN) == []
    assert runs.changes(GOOD) == [
        ("host rs2000", "unreachable", "ok"),
        ("honcho-api", "drift", "ok"),
    ]


@pytest.mark.parametrize("url", ["json://[::1/", "json://]x[/", "http://[x]", "ntfys://["])
def test_a_malformed_url_is_one_usage_line(url: str) -> None:
    """urlsplit's ValueError on a malformed host (and a plugin's) ended the run in a
    traceback before anything was collected."""
    from platformctl.errors import UsageError
    from platformctl.output.notify import AppriseChannel

    with pytest.raises(UsageError) as caught:
        AppriseChannel(url)
    scheme = url.partition("://")[0]
    assert str(caught.value).startswith(
        f"--notify: apprise cannot use the URL given for {scheme}://"
    )


def test_a_message_longer_than_the_service_takes_is_split_not_sent_whole() -> None:
    """Mattermost takes 4,000 characters: 60 changes went as one request of more, which the
    service refuses, and every later message, carrying the outbox, was longer still."""
    from platformctl.output.notify import AppriseChannel
    from tests.integration.test_notify import Receiver

    changes = [
        ModuleChange(f"module-{i:02}", "rs2000", ModuleStatus.OK, ModuleStatus.DRIFT, T0, "x" * 90)
        for i in range(60)
    ]
    receiver = Receiver()
    receiver.start()
    try:
        AppriseChannel(f"mmost://127.0.0.1:{receiver.port}/token123").send(changes)
        parts = receiver.take()
    finally:
        receiver.stop()
    assert len(parts) > 1
    assert all(len(p["text"]) <= 4000 for p in parts)
    sent = "".join(p["text"] for p in parts)
    assert all(f"module-{i:02}" in sent for i in range(60))


def test_an_untold_read_of_a_host_never_marked_is_told_when_the_host_is_down() -> None:
    """No mark yet (the first notifying run, a new host): a run by hand saw the drift, the
    first notifying run finds the host down. The drift was never told."""
    runs = Runs()
    runs.run(BAD)
    assert runs.changes(DOWN) == [
        ("honcho-api", None, "drift"),
        ("host rs2000", "ok", "unreachable"),
    ]
    assert runs.changes(BAD) == [("host rs2000", "unreachable", "ok")]


def test_an_untold_read_before_an_overtaken_run_that_finds_the_host_down_is_told() -> None:
    """A notifying run overtaken by a later-begun run tells its hosts through the newest
    row below it (the overlap path), which never looked for an untold read before it."""
    runs = Runs()
    assert runs.changes(GOOD, minute=0) == []
    runs.run(BAD, minute=1)  # by hand
    begun = runs.begin()  # the notifying run begins ...
    runs.run(DOWN, minute=5)  # ... a run by hand begun later saves first
    assert runs.changes(DOWN, minute=3, begun=begun) == [
        ("honcho-api", "ok", "drift"),
        ("host rs2000", "ok", "unreachable"),
    ]
    assert runs.changes(BAD, minute=7) == [("host rs2000", "unreachable", "ok")]


def test_a_urls_own_overflow_is_kept_whatever_its_case() -> None:
    """apprise reads `Overflow=` as `overflow=`: forced to split, the URL's choice was lost."""
    import apprise

    from platformctl.output.notify import AppriseChannel

    for url, mode in (
        ("mmost://127.0.0.1:1/t?Overflow=truncate", apprise.OverflowMode.TRUNCATE),
        ("mmost://127.0.0.1:1/t?OVERFLOW=upstream", apprise.OverflowMode.UPSTREAM),
        ("mmost://127.0.0.1:1/t", apprise.OverflowMode.SPLIT),
    ):
        assert AppriseChannel(url)._apprise[0].overflow_mode == mode, url
