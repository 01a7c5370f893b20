"""Notifications and metrics of drift-check against the real lab.

Messages go through apprise's ``json://`` scheme to a real HTTP receiver on 127.0.0.1; the
metrics file is read back with prometheus_client's parser and checked by promtool.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, Runner, StandardLab, write_module

SECRET = "pw-" + uuid.uuid4().hex[:12]


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it; it can be
    stopped and started again on the same port (a service that is down for a while)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        messages = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                messages.append({"path": self.path, **json.loads(self.rfile.read(length) or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def url(self, path: str = "hook") -> str:
        return f"json://platformctl:{SECRET}@127.0.0.1:{self.port}/{path}"

    def take(self) -> list[dict[str, Any]]:
        """The messages received since the last call."""
        taken = list(self.messages)
        self.messages.clear()
        return taken


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    try:
        yield r
    finally:
        r.stop()


@dataclass
class Platform:
    """Three docker modules on alpha, each on its own container: ``fine`` matches, ``drifter``
    runs 1.0 where 1.1 is declared, ``gone`` has no container."""

    std: StandardLab
    root: Path
    tag: str
    names: dict[str, str] = field(default_factory=dict)

    def args(self, *extra: str) -> list[str]:
        return [*self.std.args(self.root), "--connect-timeout", "3", *extra]

    def replace(self, module: str, image: str) -> None:
        """Redeploy ``module``'s container on ``image``."""
        alpha = self.std.lab.engines["alpha"]
        alpha.docker("rm", "-f", self.names[module])
        self.std.lab.run_container(alpha, self.names[module], image)

    def docker(self, *args: str) -> None:
        self.std.lab.engines["alpha"].docker(*args)


@pytest.fixture
def platform(std_lab: StandardLab, tmp_path: Path) -> Iterator[Platform]:
    lab, images = std_lab.lab, std_lab.images
    p = Platform(std_lab, tmp_path / "platform", uuid.uuid4().hex[:6])
    alpha = lab.engines["alpha"]
    for module, image in (("fine", images.web_11), ("drifter", images.web_10)):
        p.names[module] = f"ntf-{module}-{p.tag}"
        lab.run_container(alpha, p.names[module], image)
    p.names["gone"] = f"ntf-gone-{p.tag}"
    for module in ("fine", "drifter", "gone"):
        write_module(
            p.root,
            module,
            {
                "host": "alpha",
                "orchestrator": "docker",
                "container": p.names[module],
                "image_observed": std_lab.ref(images.web_11),
            },
        )
    try:
        yield p
    finally:
        for name in p.names.values():
            alpha.docker("rm", "-f", name, check=False)


def test_first_run_notifies_an_unchanged_run_does_not_and_a_fix_is_back_to_ok(
    platform: Platform, receiver: Receiver, run_cli: Runner
) -> None:
    first = run_cli("drift-check", *platform.args("--notify", receiver.url()))
    assert first.code == 2, first.err
    assert first.err == ""
    (msg,) = receiver.take()
    assert msg["path"] == "/hook"
    assert msg["title"] == "platformctl: 1 module drifted on alpha, 1 missing"
    lines = msg["message"].splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("- drifter on alpha: first check → drift since ")
    assert "tag 1.1 → 1.0" in lines[0] and "digest sha256:" in lines[0]
    assert lines[1].startswith("- gone on alpha: first check → missing since ")

    # However often cron runs it, an unchanged situation sends nothing.
    for _ in range(2):
        again = run_cli("drift-check", *platform.args("--notify", receiver.url()))
        assert again.code == 2 and again.err == ""
    assert receiver.take() == []

    platform.replace("drifter", platform.std.images.web_11)
    fixed = run_cli("drift-check", *platform.args("--notify", receiver.url()))
    assert fixed.code == 2, fixed.err  # gone is still missing
    (msg,) = receiver.take()
    assert msg["title"] == "platformctl: 1 module back to ok on alpha"
    assert msg["type"] == "success"
    (line,) = msg["message"].splitlines()
    assert line.startswith("- drifter on alpha: drift → ok since ")


def test_a_receiver_that_is_down_loses_nothing_and_never_changes_the_exit_code(
    platform: Platform, receiver: Receiver, run_cli: Runner, tmp_path: Path
) -> None:
    url = receiver.url()
    run_cli("drift-check", *platform.args("--notify", url))
    receiver.take()

    receiver.stop()
    platform.docker("stop", "-t", "0", platform.names["fine"])
    down = run_cli("drift-check", *platform.args("--notify", url))
    assert down.code == 2  # what the platform says, whatever the receiver does
    (err,) = down.err.splitlines()
    assert err == (
        f"platformctl: notification to json://127.0.0.1:{receiver.port} failed; "
        "1 change kept for the next run"
    )
    for text in (down.out, down.err):
        assert SECRET not in text
    for path in tmp_path.rglob("store.db*"):
        assert SECRET.encode() not in path.read_bytes()

    receiver.start()
    platform.docker("start", platform.names["fine"])
    up = run_cli("drift-check", *platform.args("--notify", url))
    assert up.code == 2 and up.err == ""
    (msg,) = receiver.take()
    assert msg["title"] == "platformctl: 1 module stopped on alpha, 1 back to ok"
    lines = msg["message"].splitlines()
    assert [ln.split(" since ")[0] for ln in lines] == [
        "- fine on alpha: ok → stopped",
        "- fine on alpha: stopped → ok",
    ]
    # Delivered once: the next run has nothing to send.
    run_cli("drift-check", *platform.args("--notify", url))
    assert receiver.take() == []


def test_urls_from_the_environment_and_no_notification_from_a_replay(
    platform: Platform, receiver: Receiver, run_cli: Runner
) -> None:
    env = {"PLATFORMCTL_NOTIFY": f"{receiver.url('a')} {receiver.url('b')}"}
    live = run_cli("drift-check", "--json", *platform.args(), env=env)
    assert live.code == 2, live.err
    assert sorted(m["path"] for m in receiver.take()) == ["/a", "/b"]

    platform.replace("drifter", platform.std.images.web_11)
    snapshot = str(live.json()["snapshot"]["id"])
    replay = run_cli("drift-check", "--snapshot", snapshot, *platform.args(), env=env)
    assert replay.code == 2 and replay.err == ""
    replay = run_cli(
        "drift-check", "--snapshot", "latest", *platform.args("--notify", receiver.url())
    )
    assert replay.code == 2 and replay.err == ""
    assert receiver.take() == []


def test_a_url_apprise_cannot_use_is_a_usage_error_before_anything_runs(
    platform: Platform, run_cli: Runner, tmp_path: Path
) -> None:
    result = run_cli("drift-check", *platform.args("--notify", f"nosuch://me:{SECRET}@x"))
    assert result.code == 1
    (err,) = result.err.splitlines()
    assert "nosuch://" in err and SECRET not in err
    assert not (tmp_path / "store.db").exists()


def test_metrics_file_of_a_lab_run_parses_back_and_passes_promtool(
    platform: Platform, run_cli: Runner, tmp_path: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    # A module on a host that refuses connections, for a host that is down.
    write_module(
        platform.root,
        "far",
        {
            "host": "refused",
            "orchestrator": "docker",
            "container": "x",
            "image_observed": platform.std.ref(platform.std.images.web_11),
        },
    )
    path = tmp_path / "textfile" / "platformctl.prom"
    path.parent.mkdir()
    result = run_cli("drift-check", "--json", *platform.args("--metrics-file", str(path)))
    assert result.code == 8, result.err
    doc = result.json()
    text = path.read_text()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    families = {f.name: f for f in text_string_to_metric_families(text)}
    current = {
        s.labels["module"]: s.labels["status"]
        for s in families["platformctl_module_status"].samples
        if s.value == 1
    }
    assert current == {m["module"]: m["status"] for m in doc["modules"]}
    assert current == {"fine": "ok", "drifter": "drift", "gone": "missing", "far": "unreachable"}
    up = {s.labels["host"]: s.value for s in families["platformctl_host_up"].samples}
    assert up == {"alpha": 1, "refused": 0}
    since = families["platformctl_module_drift_since_timestamp_seconds"].samples
    assert {s.labels["module"] for s in since} == {"drifter", "gone"}
    assert families["platformctl_exit_code"].samples[0].value == 8
    assert families["platformctl_run_duration_seconds"].samples[0].value > 0

    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("promtool missing in CI (scripts/setup installs prometheus)")
        pytest.skip("promtool not installed")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == ""


def test_metrics_are_refused_for_a_replay(platform: Platform, run_cli: Runner) -> None:
    run_cli("drift-check", *platform.args())
    result = run_cli(
        "drift-check", "--snapshot", "latest", *platform.args("--metrics-file", "/tmp/x.prom")
    )
    assert result.code == 1
    assert result.err.strip() == (
        "platformctl: --metrics-file describes a live run; it cannot be used with --snapshot"
    )


def test_host_text_reaches_a_service_that_renders_html_as_text(receiver: Receiver) -> None:
    """A reason quotes what a host runs; a service that renders HTML (Telegram, e-mail; here
    the webhook told `format=html`) must show a link someone wrote there as text, not as a
    link. platformctl's body is plain text, which apprise escapes for such a service."""
    from datetime import UTC, datetime

    from platformctl.differ.changes import ModuleChange
    from platformctl.differ.model import ModuleStatus
    from platformctl.output.notify import AppriseChannel

    hostile = "<a href='https://evil.invalid/x'>fix</a> & @everyone"
    change = ModuleChange(
        "web", "h1", ModuleStatus.OK, ModuleStatus.DRIFT, datetime(2026, 1, 1, tzinfo=UTC), hostile
    )
    AppriseChannel(receiver.url() + "?format=html").send([change])
    (sent,) = receiver.take()
    assert "<a href" not in sent["message"]
    assert "&lt;a" in sent["message"] and "&gt;fix&lt;/a&gt;" in sent["message"]


def test_a_run_for_one_module_tells_what_changed_on_the_whole_host(
    platform: Platform, receiver: Receiver, run_cli: Runner
) -> None:
    """The run reads the whole host and moves its mark: a change to another module of that
    host is told by it, not lost to the next full run."""
    run_cli("drift-check", *platform.args("--notify", receiver.url()))
    receiver.take()
    platform.docker("stop", "-t", "0", platform.names["fine"])
    one = run_cli("drift-check", "drifter", *platform.args("--notify", receiver.url()))
    assert one.code == 2, one.err
    (msg,) = receiver.take()
    (line,) = msg["message"].splitlines()
    assert line.startswith("- fine on alpha: ok → stopped since ")
    full = run_cli("drift-check", *platform.args("--notify", receiver.url()))
    assert full.code == 2, full.err
    assert receiver.take() == []
