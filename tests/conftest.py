"""Shared fixtures: the real lab (session-wide), platform trees and a CLI runner."""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings

from platformctl.declared.compose import Stack, load_stack_dir
from tests.lab import Lab, LabUnavailable
from tests.lab.topology import Images, standard_lab

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Two shared cores: a slow example is load, not a finding. The mutation profile
# (scripts/mutation) is deterministic, so a mutant is killed or not whatever the run.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "mutation",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    max_examples=50,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@dataclass
class StandardLab:
    """The running standard lab and its images."""

    lab: Lab
    images: Images

    def args(self, root: Path, *extra: str) -> list[str]:
        """``--root ROOT --ssh-config LAB_CONFIG`` plus ``extra``, for a CLI run on the lab."""
        return ["--root", str(root), "--ssh-config", str(self.lab.ssh_config), *extra]

    def ref(self, tagged: str) -> str:
        """``repo:tag@digest`` for a pushed image reference."""
        return f"{tagged}@{self.images.digests[tagged]}"


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Readable test IDs without escapes: a parameter holding newlines or bytes would give an
    ID with backslashes, which some runners (mutmut) cannot pass back to select the test."""
    if isinstance(val, bytes):
        val = val.decode("ascii", errors="replace")
    if isinstance(val, str) and not val.isprintable():
        return re.sub(r"[^ -~]+", "_", val)[:60]
    return None


@pytest.fixture(autouse=True, scope="session")
def _session_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session- and module-wide fixtures run before any test's own cache folder is set: they
    get one of the session's, never the user's ~/.cache."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-session"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(autouse=True)
def _fresh_caches(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test starts with platformctl's caches empty, so what it checks is computed in that
    test: a value cached by an earlier test would hide the code under test (from mutation
    testing too). platformctl's caches (parsed YAML, ssh -G answers) go to a folder of the
    test's own, not the user's ~/.cache."""
    from platformctl.declared import files, reference

    reference._parse.cache_clear()
    files._real_root.cache_clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(scope="session")
def std_lab() -> Iterator[StandardLab]:
    """The standard lab; skips locally (fails in CI) when a component is missing."""
    try:
        lab, images = standard_lab()
    except LabUnavailable as exc:
        if IN_CI:
            pytest.fail(f"in CI: {exc.skip_reason()}")
        pytest.skip(exc.skip_reason())
    try:
        yield StandardLab(lab, images)
    finally:
        lab.stop()


def write_module(root: Path, name: str, runtime: dict[str, Any], **top: Any) -> Path:
    """Write ``modules/<name>/module.yaml`` with ``spec.runtime`` = ``runtime``."""
    path = root / "modules" / name / "module.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"apiVersion": "platform/v1", "kind": "Module", **top, "spec": {"runtime": runtime}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def load_stack(path: Path) -> Stack:
    """The stack of ``ROOT/compose/<stack>/<file>``, read as a run reads it."""
    stack = load_stack_dir(path.parent, path.parent.parent.parent)
    assert stack is not None, f"no compose file in {path.parent}"
    return stack


def write_compose(
    root: Path,
    stack: str,
    services: dict[str, Any],
    env: str | None = None,
    filename: str = "compose.yaml",
    top: dict[str, Any] | None = None,
) -> Path:
    """Write ``compose/<stack>/<name>`` (and ``.env`` when given)."""
    folder = root / "compose" / stack
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(yaml.safe_dump({**(top or {}), "services": services}, sort_keys=False))
    if env is not None:
        (folder / ".env").write_text(env)
    return path


@dataclass
class Result:
    """A finished CLI run."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


Runner = Callable[..., Result]


@pytest.fixture
def run_cli(tmp_path: Path) -> Runner:
    """Run ``python -m platformctl ARGS`` in a real process with a per-test store."""

    def run(
        *args: str,
        env: dict[str, str | None] | None = None,
        timeout: float = 120,
        cwd: Path | None = None,
        preexec: Callable[[], object] | None = None,
    ) -> Result:
        """``env`` adds to the environment (a None value removes that variable); ``cwd`` is
        the folder to run in; ``preexec`` runs in the child before platformctl (limits)."""
        full_env: dict[str, str | None] = {
            **os.environ,
            "PLATFORMCTL_DB": str(tmp_path / "store.db"),
            "NO_COLOR": None,
            **(env or {}),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "platformctl", *args],
            capture_output=True,
            text=True,
            env={k: v for k, v in full_env.items() if v is not None},
            timeout=timeout,
            cwd=cwd,
            preexec_fn=preexec,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if args and args[0] == "drift-check" and "--json" in args and result.out.strip():
            assert_drift_check_contract(result.json(), result.code)
        return result

    return run


SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "schema" / "drift-check.v1.json"


@functools.cache
def _drift_check_validator() -> Any:
    """The published schema made strict: every object that lists its keys allows no others,
    so a key the code emits but the schema does not document fails the tests (users get the
    open schema, where later v1 releases may add keys)."""
    from jsonschema import Draft202012Validator

    def strict(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: strict(v) for k, v in node.items()}
            if "properties" in node and "required" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [strict(v) for v in node]
        return node

    import json

    schema = strict(json.loads(SCHEMA_PATH.read_text()))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_drift_check_contract(doc: Any, exit_code: int) -> None:
    """``doc`` is a valid ``platformctl.drift-check/v1`` report of a run that exited
    ``exit_code``."""
    errors = sorted(_drift_check_validator().iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        pytest.fail(f"drift-check --json breaks docs/schema at /{where}: {errors[0].message}")
    assert doc["exit_code"] == exit_code, "the JSON's exit_code is not the process's"


class CountingListener:
    """A TCP port that accepts connections, counts them, and never says anything."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[CountingListener]:
    listener = CountingListener()
    yield listener
    listener.close()


@pytest.fixture
def reader_waits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """How each wait of the SSH reader for its wake-up ended, in order: True when it was
    woken, False when its check ran out first (docs/design.md, "SSH")."""
    from platformctl.collector import ssh

    waits: list[bool] = []

    class Recorded(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            woken = super().wait(timeout)
            waits.append(woken)
            return woken

    class RecordedWake(ssh._Wake):
        def __init__(self, chan: Any) -> None:
            super().__init__(chan)
            self.event = Recorded()

    monkeypatch.setattr(ssh, "_Wake", RecordedWake)
    return waits


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own, to fill; skipped where mounting is not permitted (never in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    tool = shutil.which("mount")
    problem = "no mount command" if tool is None else None
    if tool is not None:
        proc = subprocess.run(
            [tool, "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
        )
        problem = (proc.stderr.strip() or "mount failed") if proc.returncode else None
    if problem is not None:
        if IN_CI:
            pytest.fail(f"cannot mount a small tmpfs to fill: {problem}")
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {problem}")
    try:
        yield mount
    finally:
        # A test that failed with a store still open keeps the mount busy: detach it lazily
        # then, so no mount outlives the test.
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "--lazy", str(mount)], check=True)
