"""The demo platform of README's first command, checked as a newcomer would read it."""

from __future__ import annotations

from pathlib import Path

from tests import golden
from tests.conftest import Runner, StandardLab
from tests.lab.demo import deploy


def test_demo_platform_output_is_as_it_was(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    platform = tmp_path / "platform"
    deploy(std_lab.lab, std_lab.images, platform)
    args = ["--root", str(platform), "--ssh-config", str(std_lab.lab.ssh_config)]
    args += ["--connect-timeout", "3"]
    for name, extra in (("demo.txt", ["--no-color"]), ("demo.json", ["--json"])):
        result = run_cli("drift-check", *args, *extra)
        assert result.code == 8
        out = golden.stable_json(result.out, ("",)) if name.endswith(".json") else result.out
        text = f"exit {result.code}\n--- stdout\n{out}--- stderr\n{result.err}"
        if name.endswith(".txt"):
            text = golden.stable_table(text, ("",), set())
        golden.check(name, golden.normalize(text, platform))
