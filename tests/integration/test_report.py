"""``platformctl report`` of real lab runs, looked at by a real browser (headless Chromium)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser import dump_dom, screenshot
from tests.conftest import StandardLab, write_module
from tests.lab.demo import deploy
from tests.lab.demo_report import drift_then_fix, undeploy
from tests.test_report import HOSTILE, Elements

DRIFT = (0xD5, 0x5E, 0x00)  # PALETTE["drift"]
PANEL = (0xF3, 0xF5, 0xF9)  # the timeline's background (--panel)


@dataclass
class Reported:
    """A platform, its store after a drift began and was fixed, and the report of it."""

    root: Path
    db: Path
    html: Path
    drifting: list[dict[str, Any]]
    fixed: dict[str, Any]
    modules: list[str]


def platformctl(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platformctl", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def reported(std_lab: StandardLab, tmp_path_factory: pytest.TempPathFactory) -> Reported:
    """A drifting container on alpha (fixed after two runs), a matching one on beta, a module
    with a hostile name whose container is gone, and one on a host that refuses."""
    lab, images = std_lab.lab, std_lab.images
    tag = uuid.uuid4().hex[:6]
    drifting, fine = f"rep-{tag}-drift", f"rep-{tag}-fine"
    lab.run_container(lab.engines["alpha"], drifting, images.web_10)
    lab.run_container(lab.engines["beta"], fine, images.web_11)
    work = tmp_path_factory.mktemp("report")
    root, db = work / "platform", work / "store.db"
    declared = std_lab.ref(images.web_11)
    write_module(
        root,
        "drifter",
        {
            "host": "alpha",
            "orchestrator": "docker",
            "container": drifting,
            "image_observed": declared,
        },
    )
    write_module(
        root,
        "fine",
        {"host": "beta", "orchestrator": "docker", "container": fine, "image_observed": declared},
    )
    write_module(
        root,
        "hostile",
        {
            "host": "beta",
            "orchestrator": "docker",
            "container": HOSTILE,
            "image_observed": declared,
        },
        metadata={"name": HOSTILE},
    )
    write_module(
        root,
        "far",
        {"host": "refused", "orchestrator": "docker", "container": "x", "image_observed": declared},
    )
    args = ["--root", str(root), "--ssh-config", str(lab.ssh_config), "--connect-timeout", "3"]
    runs = []
    for _ in range(2):
        runs.append(json.loads(platformctl("drift-check", "--json", *args, db=db).stdout))
        time.sleep(1.1)  # whole-second taken_at: keep the runs apart
    alpha = lab.engines["alpha"]
    alpha.docker("rm", "-f", drifting)
    lab.run_container(alpha, drifting, images.web_11)
    fixed = json.loads(platformctl("drift-check", "--json", *args, db=db).stdout)
    html = work / "report.html"
    made = platformctl("report", "--root", str(root), "--output", str(html), db=db)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == str(html)
    return Reported(root, db, html, runs, fixed, sorted(m["module"] for m in fixed["modules"]))


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 1600)])
def test_the_browser_draws_the_drift_inside_the_timeline(
    reported: Reported, width: int, height: int
) -> None:
    image = screenshot(reported.html, width, height)
    assert (image.width, image.height) == (width, height)
    assert image.colours() > 20, "blank screenshot"
    timeline = image.box_of(PANEL)
    assert timeline is not None, "no timeline panel on the screen"
    x0, _, x1, _ = timeline
    assert x1 - x0 > width * 0.8  # the timeline spans the page at both widths
    assert image.count(DRIFT, timeline) > 50, "no drift segment drawn in the timeline"


def test_the_dom_has_a_lane_and_a_row_per_module_and_the_hostile_name_as_text(
    reported: Reported,
) -> None:
    dom = Elements(dump_dom(reported.html))
    assert len(dom.having("module-lane")) == len(reported.modules) == 4
    assert len(dom.having("module-row")) == 4
    assert len(dom.having("host-lane")) == 3  # alpha, beta, refused
    assert not [t for t, _ in dom.tags if t in ("img", "script", "iframe")]
    assert HOSTILE in "".join(dom.text)
    html = reported.html.read_text()
    assert not re.search(r"https?://", html)  # nothing the page could fetch


def test_the_timeline_holds_one_closed_drift_from_its_start_to_the_fix(
    reported: Reported,
) -> None:
    html = reported.html.read_text()
    start = reported.drifting[0]["snapshot"]["taken_at"]
    end = reported.fixed["snapshot"]["taken_at"]
    assert f"drifter: DRIFT from {start} to {end} (" in html
    assert html.count("drifter: DRIFT from") == 1
    assert "refused not collected: UNREACHABLE from" in html  # the host lane's outage


def test_report_neither_creates_nor_needs_a_writable_store(
    reported: Reported, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.db"
    proc = platformctl("report", "--root", str(reported.root), "--output", "-", db=missing)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "no snapshot store" in proc.stderr
    assert not missing.exists()
    to_stdout = platformctl("report", "--root", str(reported.root), "--output", "-", db=reported.db)
    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith("<!DOCTYPE html>")


def test_the_demo_report_shows_the_fixed_drift_and_the_latest_verdicts(
    std_lab: StandardLab, tmp_path: Path
) -> None:
    lab = std_lab.lab
    platform, db, html = tmp_path / "platform", tmp_path / "store.db", tmp_path / "demo.html"
    lab.engines["beta"].docker("rm", "-f", "cache", check=False)  # another demo test's
    deploy(lab, std_lab.images, platform)
    try:
        drifting, fixed = drift_then_fix(lab, platform, db)
    finally:
        undeploy(lab, platform)
    assert [m["status"] for d in drifting for m in d["modules"] if m["module"] == "honcho-api"] == [
        "drift",
        "drift",
    ]
    made = platformctl("report", "--root", str(platform), "--output", str(html), db=db)
    assert made.returncode == 0, made.stderr
    page = html.read_text()
    start = drifting[0]["snapshot"]["taken_at"]
    end = fixed[0]["snapshot"]["taken_at"]
    segments = re.findall(r"honcho-api: [A-Z-]+ from [^<]*", page)
    assert segments == [f"honcho-api: DRIFT from {start} to {end} ({segments[0].split('(')[1]}"]

    latest = json.loads(
        platformctl(
            "drift-check", "--snapshot", "latest", "--json", "--root", str(platform), db=db
        ).stdout
    )
    dom = Elements(page)
    shown = {}
    for row in dom.having("module-row"):
        cls = str(row["class"]).split()
        shown[len(shown)] = cls[1]
    names = re.findall(
        r'<tr class="module-row s-[a-z-]+"><td class="name"><div>([^<]*)</div></td>', page
    )
    table = dict(zip(names, (s[2:] for s in shown.values()), strict=True))
    assert table == {m["module"]: m["status"] for m in latest["modules"]}
    assert table["honcho-api"] == "ok" and table["backup"] == "unreachable"


# Appended to a copy of a report (the report itself runs no script): the rendered width of
# each cell of the first module row, by class, into the title that --dump-dom serialises.
MEASURE = (
    "<script>document.title = JSON.stringify(Array.from("
    "document.querySelectorAll('tr.module-row td')).map("
    "td => [td.className, Math.round(td.getBoundingClientRect().width)]))</script>"
)


def test_a_long_module_name_wraps_and_leaves_the_reason_its_width(tmp_path: Path) -> None:
    """A module named like a Java package took the width: the reason column was squeezed to
    about 100 px at 1280, every row eight lines tall, digests broken mid-hex (found by an
    outside review); with a name of thousands of characters the other columns left the
    screen."""
    from datetime import timedelta

    from platformctl import api
    from platformctl.output.report import render_report
    from tests.test_differ import make_module
    from tests.test_report import day, story

    for name in (
        "com.example.observability.prometheus_node_exporter_textfile_collector",
        "x" * 5000,
    ):
        overview = api.overview((make_module(name=name),), story(), timedelta(days=8), now=day(9))
        page = tmp_path / "probe.html"
        page.write_text(render_report(overview, tmp_path).replace("</body>", MEASURE + "</body>"))
        title = re.search(r"<title>(.*?)</title>", dump_dom(page, 1280, 800), re.S)
        assert title is not None
        widths = dict(json.loads(title.group(1).replace("&quot;", '"')))
        assert widths["reason"] >= 250, widths
        assert widths["name"] <= 400, widths
