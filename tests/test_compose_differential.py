"""Differential test: every stack of tests/compose_cases/ read by platformctl and by the real
docker-compose, which must agree on every service's image and on the project name.

The oracle is Debian's docker-compose 1.29 (compose v1). Where v1 and v2 read a stack
differently, platformctl follows v2: such a case carries the v2 answer and the reason in its
``_case.yaml`` (key ``v2``), is compared with that answer, and must still differ from v1's (a
mark that no longer describes a difference is stale). ``unresolved`` lists services whose image
compose blanks or refuses for an unset variable and that platformctl reports unresolved on
purpose (README, "The platform repository"). docs/compose.md explains each difference.

compose runs with a clean environment (only PATH) and the stack folder as its working
directory, so the caller's environment never leaks into the answer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformctl.declared.compose import load_stack_dir
from tests.conftest import IN_CI

CASES_DIR = Path(__file__).parent / "compose_cases"
ORACLE = Path(__file__).parent / "compose_oracle.py"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "_case.yaml").is_file())
SYSTEM_PYTHON = "/usr/bin/python3"
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


@dataclass(frozen=True)
class Prepared:
    """A case copied into a platform tree, with what compose v1 said about it."""

    folder: Path
    root: Path
    meta: dict[str, Any]
    v1: dict[str, Any]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"docker-compose is needed for the differential test in CI: {reason}")
    pytest.skip(f"{reason}; install Debian's docker-compose (apt-get install docker-compose)")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Prepared]:
    """Every case copied to ``ROOT/compose/<folder>/`` and read once by docker-compose."""
    if shutil.which("docker-compose", path=CLEAN_ENV["PATH"]) is None:
        _unavailable("docker-compose is not installed")
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import compose.cli.main"], env=CLEAN_ENV, capture_output=True
    )
    if probe.returncode != 0:
        _unavailable("docker-compose's Python package is not importable by /usr/bin/python3")
    root = tmp_path_factory.mktemp("compose-corpus")
    folders: dict[str, tuple[Path, dict[str, Any]]] = {}
    for case in CASES:
        meta = yaml.safe_load((CASES_DIR / case / "_case.yaml").read_text())
        folder = root / "compose" / str(meta.get("folder", case))
        shutil.copytree(CASES_DIR / case, folder, ignore=shutil.ignore_patterns("_case.yaml"))
        folders[case] = (folder, meta)
    requests = "".join(json.dumps(str(folder)) + "\n" for folder, _ in folders.values())
    run = subprocess.run(
        [SYSTEM_PYTHON, str(ORACLE), "stacks"],
        input=requests,
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"the compose oracle failed: {run.stderr[-2000:]}"
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(answers) == len(folders)
    return {
        case: Prepared(folder, root, meta, answer)
        for (case, (folder, meta)), answer in zip(folders.items(), answers, strict=True)
    }


def test_the_corpus_covers_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_platformctl_reads_the_stack_as_compose_does(
    prepared: dict[str, Prepared], case: str
) -> None:
    p = prepared[case]
    v1 = p.v1
    v2 = p.meta.get("v2")
    unresolved = set(p.meta.get("unresolved", []))
    stack = load_stack_dir(p.folder, p.root)
    assert stack is not None

    if v2 is not None:
        assert v2.get("reason"), f"{case}: a v2 mark must say why v1 differs"
        expected_v2 = _apply_v2(v1, v2)
        assert _comparable(v1) != expected_v2, f"{case}: stale v2 mark, v1 now agrees with v2"
        expected = expected_v2
    elif "error" in v1:
        assert p.meta.get("compose_refuses"), f"{case}: compose refused it: {v1['error']}"
        assert unresolved, f"{case}: compose refuses; name the services left unresolved"
        expected = None
    else:
        expected = _comparable(v1)

    if expected is not None and expected.get("refuses"):
        assert stack.problem is not None, f"{case}: compose v2 refuses this stack"
        return
    assert stack.problem is None, f"{case}: {stack.problem}"
    for name in unresolved:
        assert not stack.services[name].resolved, f"{case}: {name} must be unresolved"
        assert "unresolved" in (stack.services[name].reason or "")
    if expected is None:
        return
    assert stack.project == expected["project"], case
    ours = {name: image.raw for name, image in stack.services.items() if name not in unresolved}
    theirs = {name: raw for name, raw in expected["images"].items() if name not in unresolved}
    assert ours == theirs, case
    for name, raw in theirs.items():
        assert stack.services[name].build_only == (raw is None), f"{case}: {name}"


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    if "error" in answer:
        return {"error": answer["error"]}
    return {"project": answer["project"], "images": dict(answer["images"])}


def _apply_v2(v1: dict[str, Any], v2: dict[str, Any]) -> dict[str, Any]:
    """v1's answer with the parts the case's ``v2`` mark gives replaced."""
    if v2.get("refuses"):
        return {"refuses": True}
    if "error" in v1:
        assert "project" in v2 and "images" in v2, "v1 refused: the v2 mark must give everything"
    base = _comparable(v1) if "error" not in v1 else {"project": None, "images": {}}
    images = {**base["images"], **v2.get("images", {})}
    return {"project": v2.get("project", base["project"]), "images": images}
