"""``python -m tests.lab.demo_report [PNG]``: the demo platform's HTML report, and its picture.

Starts the demo lab, deploys the example platform (honcho-api drifting at 3.0.3), runs
``drift-check`` a few times, redeploys honcho-api at the declared 3.0.6 and checks again, so
the store holds a drift that began and was fixed; then writes ``platformctl report`` next to
the lab and, when a PNG path is given, a 1280-pixel-wide screenshot of it taken by headless
Chromium (README's picture: ``python -m tests.lab.demo_report docs/demo-report.png``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.lab.demo import deploy
from tests.lab.lab import Lab
from tests.lab.topology import Images, standard_lab


def platformctl(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m platformctl ARGS`` against the store ``db``."""
    return subprocess.run(
        [sys.executable, "-m", "platformctl", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=180,
    )


def check(lab: Lab, platform: Path, db: Path) -> dict[str, Any]:
    """One live ``drift-check --json`` of the demo platform; its document."""
    proc = platformctl(
        "drift-check",
        "--json",
        "--root",
        str(platform),
        "--ssh-config",
        str(lab.ssh_config),
        "--connect-timeout",
        "3",
        db=db,
    )
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def drift_then_fix(
    lab: Lab, platform: Path, db: Path, before: int = 2, after: int = 2, pause: float = 1.1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check ``before`` times while honcho-api drifts, redeploy it as declared, check ``after``
    times; the pause keeps the runs' ``taken_at`` (whole seconds) apart."""
    drifting, fixed = [], []
    for _ in range(before):
        drifting.append(check(lab, platform, db))
        time.sleep(pause)
    # The repository's .env says HONCHO_TAG=3.0.6: deploying as declared fixes the drift.
    lab.compose(lab.engines["alpha"], platform / "compose" / "apps", "apps", "up", "-d")
    for i in range(after):
        fixed.append(check(lab, platform, db))
        if i + 1 < after:
            time.sleep(pause)
    return drifting, fixed


def undeploy(lab: Lab, platform: Path) -> None:
    """Remove the demo's containers, so another deployment in the same lab starts clean."""
    lab.compose(lab.engines["alpha"], platform / "compose" / "apps", "apps", "down")
    lab.engines["beta"].docker("rm", "-f", "cache", check=False)


def main(argv: list[str]) -> int:
    png = Path(argv[0]).resolve() if argv else None
    print("starting the demo lab (registry, two Docker engines, two sshd on loopback)...")
    lab, images = standard_lab()
    try:
        return _run(lab, images, png)
    finally:
        lab.stop()


def _run(lab: Lab, images: Images, png: Path | None) -> int:
    platform = lab.root / "platform"
    db = lab.root / "snapshots.db"
    deploy(lab, images, platform)
    print("checking while honcho-api drifts, then after redeploying it at 3.0.6...")
    drift_then_fix(lab, platform, db, before=3, after=3, pause=2)
    html = lab.root.parent / "platformctl-demo-report.html"
    proc = platformctl("report", "--root", str(platform), "--output", str(html), db=db)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    print(f"the report: {html}")
    if png is not None:
        with tempfile.TemporaryDirectory(prefix="pctl-chromium-") as profile:
            subprocess.run(
                [
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    f"--user-data-dir={profile}",
                    f"--screenshot={png}",
                    "--window-size=1280,720",
                    html.as_uri(),
                ],
                capture_output=True,
                check=True,
                timeout=120,
            )
        print(f"its screenshot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
