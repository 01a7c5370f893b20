"""A live drift-check starts each host while the manifests are still read, and still connects
only to the hosts its scope needs.

The module in scope runs on ``localhost`` (a docker stand-in, no SSH); the other host is an
ssh alias whose address is a listener of the test's that counts connections and never
speaks. A connection there is a host the run should not have touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from platformctl.collector.fanout import Fanout
from platformctl.collector.interface import Output
from platformctl.declared.manifests import load_declared
from platformctl.declared.model import CheckedModule, InvalidModule
from tests.conftest import CountingListener, Runner, write_module

EMPTY_DOCKER = """#!/bin/sh
case "$1 $2" in
  "info --format") echo '{"version":"24.0.7","driver":"overlay2"}' ;;
  "container ls") ;;
  *) echo "unexpected: $*" >&2; exit 64 ;;
esac
"""


def platform(
    tmp_path: Path, silent: CountingListener, other_name: str, fillers: int = 0
) -> tuple[Path, list[str]]:
    """``web`` on localhost, and a module named ``other_name`` on the silent host ``far``;
    returns the root and the common arguments."""
    root = tmp_path / "p"
    write_module(
        root,
        "a-web",
        {
            "host": "localhost",
            "orchestrator": "docker",
            "container": "web",
            "image_observed": "nginx:1.25",
        },
        metadata={"name": "web"},
    )
    write_module(
        root,
        "b-far",
        {
            "host": "far",
            "orchestrator": "docker",
            "container": "api",
            "image_observed": "nginx:1.25",
        },
        metadata={"name": other_name},
    )
    # Read after the two: a host started early has their reading time to connect.
    for i in range(fillers):
        write_module(root, f"c-fill-{i:03d}", {"orchestrator": "external"})
    docker = tmp_path / "docker"
    docker.write_text(EMPTY_DOCKER)
    docker.chmod(0o755)
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host far\n  HostName 127.0.0.1\n  Port {silent.port}\n  BatchMode yes\n"
        f"  UserKnownHostsFile {tmp_path / 'known_hosts'}\n"
    )
    args = [
        "--root", str(root), "--docker-command", str(docker), "--ssh-config", str(config),
        "--connect-timeout", "1", "--json",
    ]  # fmt: skip
    return root, args


def test_a_named_module_run_never_connects_to_other_hosts(
    tmp_path: Path, silent: CountingListener, run_cli: Runner
) -> None:
    _, args = platform(tmp_path, silent, "far-api")
    result = run_cli("drift-check", "web", *args)
    assert result.code == 2, result.err  # web is missing on the empty engine
    assert [h["host"] for h in result.json()["hosts"]] == ["localhost"]
    assert not silent.accepted


def test_a_duplicate_manifest_s_host_is_not_contacted(
    tmp_path: Path, silent: CountingListener, run_cli: Runner
) -> None:
    _, args = platform(tmp_path, silent, "web")  # b-far reuses the name: invalid
    result = run_cli("drift-check", *args)
    assert [h["host"] for h in result.json()["hosts"]] == ["localhost"]
    (duplicate,) = [m for m in result.json()["modules"] if m["status"] == "invalid"]
    assert "also used by" in duplicate["reason"]
    assert duplicate["drift_since"] is None  # not the valid module's age (it shares the name)
    assert not silent.accepted


def test_a_run_of_every_module_does_reach_the_other_host(
    tmp_path: Path, silent: CountingListener, run_cli: Runner
) -> None:
    # The same platform, every module in scope: the listener does see the connection, so
    # the two tests above would have seen one too.
    _, args = platform(tmp_path, silent, "far-api")
    result = run_cli("drift-check", *args)
    assert sorted(h["host"] for h in result.json()["hosts"]) == ["far", "localhost"]
    assert len(silent.accepted) == 1


def test_an_unknown_module_name_is_a_usage_error_before_any_host_is_contacted(
    tmp_path: Path, silent: CountingListener, run_cli: Runner
) -> None:
    _, args = platform(tmp_path, silent, "far-api", fillers=300)
    result = run_cli("drift-check", "far-api", "nosuch", *args)
    assert result.code == 1
    assert "unknown module 'nosuch'" in result.err and "Traceback" not in result.err
    assert not silent.accepted  # far-api is named, but the run is a usage error


def test_a_store_that_cannot_be_opened_is_a_usage_error_before_any_host_is_contacted(
    tmp_path: Path, silent: CountingListener, run_cli: Runner
) -> None:
    _, args = platform(tmp_path, silent, "far-api", fillers=300)
    result = run_cli("drift-check", *args, "--db", str(tmp_path))  # a folder
    assert result.code == 1 and "Traceback" not in result.err
    assert not silent.accepted


def test_each_module_is_handed_over_final_and_in_folder_order(
    tmp_path: Path, silent: CountingListener
) -> None:
    root, _ = platform(tmp_path, silent, "web")
    seen: list[object] = []
    declared = load_declared(root, on_module=seen.append)
    first, second = seen
    assert isinstance(first, CheckedModule) and first.path.parent.name == "a-web"
    assert isinstance(second, InvalidModule) and "also used by" in second.problem
    assert sorted(seen, key=lambda m: m.name) == list(declared.modules)  # type: ignore[attr-defined]


class Canned:
    """A transport factory answering every host at once with an empty engine."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str) -> Canned:
        self.asked.append(host)
        return self

    def run(self, script: str) -> Output:
        out = (
            "@@platformctl 1\n@@info\n"
            '{"version":"24.0.7","driver":"overlay2"}\n@@rc 0\n@@ls\n\n@@rc 0\n@@end\n'
        )
        return Output(out.encode(), b"@@info\n@@ls\n@@end\n")


def test_an_open_ended_fanout_returns_exactly_the_hosts_it_is_finished_with() -> None:
    factory = Canned()
    fanout = Fanout(None, factory, "script", jobs=2)
    for host in ("b", "a", "b", "x"):
        fanout.add(host)
    fanout.finish(["a", "b", "c"])
    collection = fanout.wait()
    assert [h.host for h in collection.hosts] == ["a", "b", "c"]
    assert all(h.ok for h in collection.hosts)
    assert sorted(factory.asked) == ["a", "b", "c", "x"]  # each once; x was added, not kept


def test_an_open_ended_fanout_refuses_to_be_misused() -> None:
    fanout = Fanout(None, Canned(), "script", jobs=1)
    with pytest.raises(RuntimeError, match="before finish"):
        fanout.wait()
    fanout.add("a")
    fanout.finish(["a"])
    with pytest.raises(RuntimeError, match="twice"):
        fanout.finish(["a", "b"])  # would queue b behind the worker's stop sign: a hang
    with pytest.raises(RuntimeError, match="after finish"):
        fanout.add("b")
    assert [h.host for h in fanout.wait().hosts] == ["a"]
