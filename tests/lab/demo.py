"""``python -m tests.lab.demo``: start the lab, deploy the example platform, run drift-check.

The example under ``examples/demo-platform`` is copied into the lab folder with the lab's
registry address and digests filled in; the project's files are never modified.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.lab.lab import Lab, free_port
from tests.lab.topology import Images, standard_lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo-platform"


def render(target: Path, registry: str, digests: dict[str, str]) -> None:
    """Copy the example, replacing ``@@registry@@`` and ``@@digest:name:tag@@``."""
    shutil.copytree(EXAMPLE, target)
    by_short = {ref.rsplit("/", 1)[-1]: digest for ref, digest in digests.items()}
    for path in target.rglob("*"):
        if path.is_file():
            text = path.read_text().replace("@@registry@@", registry)
            text = re.sub(r"@@digest:([^@]+)@@", lambda m: by_short[m.group(1)], text)
            path.write_text(text)


def deploy(lab: Lab, images: Images, platform: Path) -> None:
    """Render the example platform into ``platform`` and deploy it, drift included."""
    render(platform, lab.registry, images.digests)
    lab.add_alias("nas", "127.0.0.1", free_port())
    stack = platform / "compose" / "apps"
    lab.compose(lab.engines["alpha"], stack, "apps", "up", "-d", "web")
    # Someone deployed 3.0.3 by hand although the repository says 3.0.6.
    lab.compose(
        lab.engines["alpha"], stack, "apps", "up", "-d", "honcho-api", env={"HONCHO_TAG": "3.0.3"}
    )
    lab.run_container(lab.engines["beta"], "cache", images.web_11)


def main() -> int:
    print("starting the demo lab (registry, two Docker engines, two sshd on loopback)...")
    lab, images = standard_lab()
    try:
        platform = lab.root / "platform"
        deploy(lab, images, platform)
        args = [
            "drift-check",
            "--root",
            str(platform),
            "--ssh-config",
            str(lab.ssh_config),
            "--db",
            str(lab.root / "snapshots.db"),
            "--connect-timeout",
            "3",
        ]
        print(f"\n$ platformctl {' '.join(args)}\n", flush=True)
        code = subprocess.run([sys.executable, "-m", "platformctl", *args]).returncode
        print(f"\nexit code {code} (8: drift found, and one host could not be reached)")
        json_path = lab.root.parent / "platformctl-demo.json"
        with open(json_path, "w") as fh:
            subprocess.run([sys.executable, "-m", "platformctl", *args, "--json"], stdout=fh)
        print(f"the same check as JSON: {json_path}")
        return 0 if code == 8 else 1
    finally:
        lab.stop()


if __name__ == "__main__":
    sys.exit(main())
