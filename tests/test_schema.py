"""docs/schema/drift-check.v1.json: a valid JSON Schema (draft 2020-12) that the reports
validate against, and that rejects what the README's contract forbids. Every ``--json``
drift-check run through ``run_cli`` is validated too (tests/conftest.py)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from platformctl.collector.model import HostResult, HostStatus, Image
from platformctl.declared.model import ExternalModule, InvalidModule
from platformctl.differ import diff
from platformctl.exitcodes import for_report
from platformctl.output.drift_check import render_json
from platformctl.snapshots.model import SnapshotStatus
from tests.conftest import SCHEMA_PATH, assert_drift_check_contract
from tests.test_differ import (
    ID303,
    REPO,
    host,
    make_compose,
    make_container,
    make_module,
)

AT = datetime(2026, 11, 27, 10, tzinfo=UTC)


def published() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture
def rich() -> dict[str, Any]:
    """A report holding most statuses, every check kind, and hosts ok and not."""
    local = Image("sha256:" + "b1" * 32, (f"{REPO}:3.0.6",), ())
    ok = host(
        make_container(),
        make_container(id="2" * 64, service="drifts", config_image=f"{REPO}:3.0.3", image_id=ID303),
        make_container(id="3" * 64, service="local", image_id=local.id),
        make_container(id="4" * 64, service="paused", status="paused"),
        images=(*host().state.images, local),  # type: ignore[union-attr]
    )
    modules = (
        make_module(name="fine"),
        make_module(compose=make_compose(f"{REPO}:3.0.5")),
        make_module(name="drifts", compose_service="drifts"),
        make_module(name="local", compose_service="local"),
        make_module(name="paused", compose_service="paused"),
        make_module(name="gone", compose_service="gone"),
        make_module(name="far", host="far"),
        make_module(name="broke", host="broke"),
        InvalidModule(name="bad", path=Path("/p/modules/bad/module.yaml"), problem="broken"),
        ExternalModule(name="dns", path=Path("/p")),
    )
    hosts = (
        ok,
        HostResult("far", HostStatus.UNREACHABLE, "connection refused by 127.0.0.1:22"),
        HostResult("broke", HostStatus.ERROR, "docker container inspect failed: boom"),
    )
    report = diff(
        modules,
        hosts,
        snapshot_id=7,
        taken_at=AT,
        snapshot_status=SnapshotStatus.PARTIAL,
        replay=False,
        now=AT,
    )
    doc: dict[str, Any] = json.loads(render_json(report, for_report(report)))
    return doc


def test_the_schema_is_valid_draft_2020_12_and_a_rich_report_conforms(
    rich: dict[str, Any],
) -> None:
    statuses = {m["status"] for m in rich["modules"]}
    assert statuses >= {"ok", "drift", "missing", "stopped", "unverifiable", "unreachable"}
    assert statuses >= {"error", "invalid", "skipped"}
    published().validate(rich)
    assert_drift_check_contract(rich, rich["exit_code"])  # the strict form the tests use


def test_no_host_in_scope_means_a_null_snapshot_id() -> None:
    external = ExternalModule(name="dns", path=Path("/p"))
    report = diff(
        (external,),
        (),
        snapshot_id=None,
        taken_at=AT,
        snapshot_status=SnapshotStatus.COMPLETE,
        replay=False,
        now=AT,
    )
    doc = json.loads(render_json(report, for_report(report)))
    published().validate(doc)
    broken = copy.deepcopy(doc)
    broken["snapshot"]["id"] = 3
    assert not published().is_valid(broken)


def _mutations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []

    def changed(label: str, edit: Any) -> None:
        d = copy.deepcopy(doc)
        edit(d)
        out.append((label, d))

    changed("renamed top key", lambda d: d.update(exitcode=d.pop("exit_code")))
    changed("unknown schema", lambda d: d.update(schema="platformctl.drift-check/v2"))
    changed("summary lacks a status", lambda d: d["summary"].pop("not-collected"))
    changed(
        "host renamed key",
        lambda d: d["hosts"][0].update(docker=d["hosts"][0].pop("docker_version")),
    )
    changed("containers on a failed host", lambda d: d["hosts"][1].update(containers=0))
    changed("null containers on an ok host", lambda d: d["hosts"][0].update(containers=None))
    changed("unknown module status", lambda d: d["modules"][0].update(status="fine"))
    changed(
        "drift_since on an ok module",
        lambda d: d["modules"][0].update(drift_since="2026-11-20T00:00:00Z"),
    )
    changed("bad digest", lambda d: d["modules"][0]["declared"].update(digest="sha256:XYZ"))
    changed(
        "unknown change field",
        lambda d: d["modules"][1]["checks"][0]["changes"].update(env=["a", "b"]),
    )
    changed("check lacks note", lambda d: d["modules"][0]["checks"][0].pop("note"))
    changed("live lacks digests", lambda d: d["modules"][0]["live"][0].pop("digests"))
    return out


def test_the_schema_rejects_what_the_contract_forbids(rich: dict[str, Any]) -> None:
    ok_host = next(h for h in rich["hosts"] if h["status"] == "ok")
    failed = next(h for h in rich["hosts"] if h["status"] == "error")
    rich["hosts"] = [ok_host, failed]
    ok_module = next(m for m in rich["modules"] if m["status"] == "ok")
    drifting = next(m for m in rich["modules"] if m["module"] == "drifts")
    rich["modules"] = [ok_module, drifting]
    assert drifting["checks"][0]["changes"]
    published().validate(rich)
    for label, broken in _mutations(rich):
        assert not published().is_valid(broken), label


def test_a_key_the_schema_does_not_document_fails_the_tests(rich: dict[str, Any]) -> None:
    rich["modules"][0]["undocumented"] = 1
    published().validate(rich)  # users' schema: later v1 releases may add keys
    with pytest.raises(pytest.fail.Exception, match="undocumented"):
        assert_drift_check_contract(rich, rich["exit_code"])
