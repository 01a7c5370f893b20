"""Accepted drift end to end on the real lab: a rolled-back container on alpha, declared with
and without ``drift_accepted``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, Runner, StandardLab, write_module

REASON = "rolled back to web 1.0 while 1.1 leaks memory (INC-42)"


@dataclass
class Platform:
    """A platform repository whose modules all point at alpha."""

    root: Path
    std: StandardLab

    def check(self, run_cli: Runner, *extra: str) -> Result:
        return run_cli("drift-check", *self.std.args(self.root, "--connect-timeout", "3", *extra))


@pytest.fixture(scope="module")
def platform(std_lab: StandardLab, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """``rollback`` runs web 1.0 where 1.1 is declared (drift); ``fine`` runs 1.1 (ok)."""
    lab, images = std_lab.lab, std_lab.images
    alpha = lab.engines["alpha"]
    tag = uuid.uuid4().hex[:8]
    rollback, fine = f"acc-{tag}-rollback", f"acc-{tag}-fine"
    lab.run_container(alpha, rollback, images.web_10)
    lab.run_container(alpha, fine, images.web_11)
    root = tmp_path_factory.mktemp("accepted")
    web_10, web_11 = images.digests[images.web_10], images.digests[images.web_11]

    def module(name: str, container: str, accepted: dict[str, Any] | None) -> None:
        runtime: dict[str, Any] = {
            "host": "alpha",
            "orchestrator": "docker",
            "container": container,
            "image_observed": std_lab.ref(images.web_11),
        }
        if accepted is not None:
            runtime["drift_accepted"] = accepted
        write_module(root, name, runtime)

    module("plain", rollback, None)
    module("accepted", rollback, {"reason": REASON, "until": "2099-12-31", "digest": web_10})
    module("expired", rollback, {"reason": REASON, "until": "2020-01-01T12:00:00Z"})
    module("changed", rollback, {"reason": REASON, "until": "2099-12-31", "digest": web_11})
    module("stale", fine, {"reason": REASON, "until": "2099-12-31"})
    module("malformed", rollback, {"until": "2099-12-31"})
    return Platform(root, std_lab)


def only(result: Result) -> dict[str, Any]:
    (module,) = result.json()["modules"]
    return dict(module)


def test_an_accepted_drift_exits_0_where_it_exited_2(platform: Platform, run_cli: Runner) -> None:
    plain = platform.check(run_cli, "plain", "--json")
    assert plain.code == 2 and only(plain)["status"] == "drift", plain.err

    result = platform.check(run_cli, "accepted", "--json")
    assert result.code == 0, result.out + result.err
    module = only(result)
    assert module["status"] == "accepted" and module["accepted_status"] == "drift"
    assert module["accepted"]["reason"] == REASON and module["accepted"]["until"] == "2099-12-31"
    assert module["accepted"]["outcome"] == "applied"
    # The verdict underneath is the drift, check by check.
    assert module["checks"] == only(plain)["checks"]
    assert module["checks"][0]["result"] == "drift"
    assert module["reason"] == only(plain)["reason"]
    # drift_since is unchanged by an acceptance: still since the first drifting snapshot.
    assert module["drift_since"] is not None

    table = platform.check(run_cli, "accepted", "--no-color")
    assert table.code == 0
    lines = table.out.splitlines()
    row = next(line for line in lines if line.startswith("accepted"))
    assert "ACCEPTED" in row and "web:1.0@" in row
    assert lines[lines.index(row) + 1] == f"    accepted until 2099-12-31: {REASON}"
    assert lines[lines.index(row) + 2].startswith("    drift: manifest-live")

    # A replay today judges the stored state the same way.
    replay = run_cli(
        "drift-check", "accepted", "--snapshot", "latest", "--root", str(platform.root)
    )
    assert replay.code == 0 and "ACCEPTED" in replay.out

    # History keeps the drift, marked accepted.
    history = run_cli("drift-history", "accepted", "--json", "--root", str(platform.root)).json()
    (entry,) = history["modules"]
    assert entry["status"] == "accepted"
    assert [(i["status"], i["to"], i["accepted"]) for i in entry["intervals"]] == [
        ("drift", None, True)
    ]
    assert entry["intervals"][0]["from"] == module["drift_since"]


def test_an_expired_acceptance_exits_2_with_the_reason(platform: Platform, run_cli: Runner) -> None:
    result = platform.check(run_cli, "expired", "--json")
    assert result.code == 2, result.out + result.err
    module = only(result)
    assert module["status"] == "drift" and module["accepted_status"] is None
    assert module["reason"].startswith("acceptance expired on 2020-01-01T12:00:00Z; manifest-live")
    assert module["accepted"]["outcome"] == "expired"
    table = platform.check(run_cli, "expired", "--no-color")
    assert table.code == 2 and "acceptance expired on 2020-01-01T12:00:00Z" in table.out


def test_a_live_image_other_than_the_accepted_digest_exits_2(
    platform: Platform, run_cli: Runner
) -> None:
    result = platform.check(run_cli, "changed", "--json")
    assert result.code == 2, result.out + result.err
    module = only(result)
    assert module["status"] == "drift"
    assert module["reason"].startswith("live changed since it was accepted")
    assert module["accepted"]["outcome"] == "live-changed"


def test_an_acceptance_on_an_ok_module_warns_that_it_is_no_longer_needed(
    platform: Platform, run_cli: Runner
) -> None:
    result = platform.check(run_cli, "stale", "--json")
    assert result.code == 0, result.out + result.err
    module = only(result)
    assert module["status"] == "ok" and module["accepted"]["outcome"] == "not-needed"
    (warning,) = module["warnings"]
    assert warning.startswith("drift_accepted is no longer needed")
    assert f"warning: stale: {warning}" in result.err.splitlines()
    table = platform.check(run_cli, "stale", "--no-color")
    assert table.code == 0 and f"    warning: {warning}" in table.out.splitlines()


def test_a_malformed_acceptance_makes_the_module_invalid(
    platform: Platform, run_cli: Runner
) -> None:
    result = platform.check(run_cli, "malformed", "--json")
    assert result.code == 8, result.out + result.err
    module = only(result)
    assert module["status"] == "invalid"
    assert module["manifest"] in module["reason"]
    assert "spec.runtime.drift_accepted.reason is required" in module["reason"]
    # Outside the scope it only warns, and the modules in scope keep their exit code.
    other = platform.check(run_cli, "accepted")
    assert other.code == 0
    assert "warning: malformed:" in other.err and "drift_accepted.reason" in other.err
