"""observe's output: the plan is a patch git applies; terminal output is sanitized."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from platformctl.declared.edit import plan_edit, write_edit
from platformctl.differ import diff
from platformctl.differ.observe import ObserveReport, observe
from platformctl.exitcodes import for_observe
from platformctl.output.observe import observe_json, observe_text
from platformctl.snapshots.model import SnapshotStatus
from tests.test_differ import D303, ID303, REPO, host, make_container, make_module

AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def planned(root: Path, text: str, folder: str = "honcho-api") -> ObserveReport:
    path = root / "modules" / folder / "module.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    module = make_module(path=path)
    live = host(make_container(config_image=f"{REPO}:3.0.3", image_id=ID303))
    report = diff(
        (module,),
        (live,),
        snapshot_id=7,
        taken_at=AT,
        snapshot_status=SnapshotStatus.COMPLETE,
        replay=False,
        now=AT,
    )
    o = observe(report.modules[0], AT)
    assert o.observed is not None
    o = replace(o, edit=plan_edit(root, path, o.observed))
    return ObserveReport(report=report, observations=(o,), write=False)


MANIFEST = (
    # YAML refuses C0 controls even in comments, but bidi controls pass.
    "spec:\n  runtime:\n    host: rs2000\n    orchestrator: docker-compose\n"
    "    compose_service: honcho-api  # owner: \u202epwned\u2066 team\n"
    f"    image_observed: {REPO}:3.0.6@sha256:{'06' * 32}"  # no final newline
)


def test_on_a_terminal_control_characters_are_shown_never_emitted(tmp_path: Path) -> None:
    result = planned(tmp_path, MANIFEST)
    code = for_observe(result.observations)
    shown = observe_text(result, code, tmp_path, terminal=True)
    assert "\u202e" not in shown.out and "\u2066" not in shown.out
    assert "\\u202epwned\\u2066 team" in shown.out
    raw = observe_text(result, code, tmp_path, terminal=False)
    assert "\u202epwned\u2066" in raw.out  # a file keeps the bytes, so the patch applies
    assert "would change modules/honcho-api/module.yaml (honcho-api)" in shown.err
    assert shown.err.endswith(
        "(snapshot 7 taken 2026-11-27T10:00:00Z; exit 2); review the diff, "
        "then run again with --write to record it\n"
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize(
    "text",
    [
        MANIFEST,
        # A Unicode line separator ends a YAML comment, but git counts lines by \n alone.
        MANIFEST.replace("    host: rs2000\n", "    host: rs2000  # a\u2028    # b\n") + "\r\n",
    ],
)
def test_the_dry_run_patch_applies_with_git_and_equals_the_write(tmp_path: Path, text: str) -> None:
    result = planned(tmp_path / "applied", text)
    patch = observe_text(result, for_observe(result.observations), tmp_path / "applied", False)
    subprocess.run(
        ["git", "apply", "--unsafe-paths", "-"],
        input=patch.out.encode(),
        cwd=tmp_path / "applied",
        check=True,
        capture_output=True,
    )
    written = planned(tmp_path / "written", text).observations[0]
    assert written.edit is not None
    write_edit(tmp_path / "written", written.edit)
    target = Path("modules/honcho-api/module.yaml")
    assert (tmp_path / "applied" / target).read_bytes() == (
        tmp_path / "written" / target
    ).read_bytes()
    assert f"{REPO}:3.0.3@{D303}" in (tmp_path / "written" / target).read_text()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("folder", ["tab\tx", "line\nbreak", 'quote"d', "back\\slash", "e\x1bsc"])
def test_the_patch_applies_with_git_whatever_the_module_folder_is_called(
    tmp_path: Path, folder: str
) -> None:
    """git writes such a name in double quotes with C escapes; bare, a tab ended the name and
    a line break split the header, and `git apply` refused the patch."""
    result = planned(tmp_path, MANIFEST, folder)
    patch = observe_text(result, for_observe(result.observations), tmp_path, False)
    subprocess.run(
        ["git", "apply", "--unsafe-paths", "-"],
        input=patch.out.encode(),
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    applied = (tmp_path / "modules" / folder / "module.yaml").read_text()
    assert f"{REPO}:3.0.3@{D303}" in applied


def test_json_names_the_manifest_relative_to_the_root(tmp_path: Path) -> None:
    import json

    result = planned(tmp_path, MANIFEST)
    doc = json.loads(observe_json(result, for_observe(result.observations), tmp_path))
    (module,) = doc["modules"]
    assert module["manifest"] == "modules/honcho-api/module.yaml"
    assert module["after"] == f"{REPO}:3.0.3@{D303}"
    assert module["diff"].endswith("\\ No newline at end of file\n")
    assert doc["exit_code"] == 2 and doc["snapshot"]["id"] == 7
