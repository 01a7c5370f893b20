"""The library API of observe: plan, then apply; a file edited in between is not overwritten."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from platformctl import api
from platformctl.collector.connector import CollectOptions
from platformctl.collector.model import Collection
from platformctl.declared.manifests import load_declared
from platformctl.differ.observe import ObserveReport, ObserveStatus
from platformctl.exitcodes import ExitCode, for_observe
from platformctl.snapshots.store import Store
from tests.test_differ import D303, D306, ID303, REPO, host, make_container

MANIFEST = f"""# audited by hand
spec:
  runtime:
    host: rs2000
    orchestrator: docker
    container: honcho
    image_observed: "{REPO}:3.0.6@{D306}"   # keep this comment
"""


def planned(tmp_path: Path) -> tuple[Path, Path, ObserveReport]:
    root = tmp_path / "platform"
    path = root / "modules" / "honcho-api" / "module.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(MANIFEST)
    store = Store(Database(memory=True))
    live = host(make_container(name="honcho", config_image=f"{REPO}:3.0.3", image_id=ID303))
    store.save(Collection(datetime(2026, 11, 27, 10, 0, tzinfo=UTC), (live,)), "test")
    scope = load_declared(root).modules
    return root, path, api.observe(scope, store, CollectOptions(), root, snapshot="latest")


def test_the_plan_writes_nothing_and_apply_writes_what_it_showed(tmp_path: Path) -> None:
    root, path, plan = planned(tmp_path)
    (o,) = plan.observations
    assert o.status is ObserveStatus.CHANGED and not o.written and o.edit is not None
    assert path.read_text() == MANIFEST
    assert for_observe(plan.observations) is ExitCode.DRIFT
    done = api.apply_observed(plan, root)
    assert path.read_bytes() == o.edit.after
    assert path.read_text() == MANIFEST.replace(f"3.0.6@{D306}", f"3.0.3@{D303}")
    assert done.write and done.observations[0].written
    assert for_observe(done.observations) is ExitCode.OK


def test_a_manifest_edited_between_plan_and_apply_is_not_overwritten(tmp_path: Path) -> None:
    root, path, plan = planned(tmp_path)
    edited = MANIFEST.replace("# audited by hand", "# someone is editing this right now")
    path.write_text(edited)
    done = api.apply_observed(plan, root)
    (o,) = done.observations
    assert o.status is ObserveStatus.SKIPPED and not o.written and o.edit is None
    assert "changed on disk since it was read; not overwritten" in (o.reason or "")
    assert path.read_text() == edited
    assert sorted(p.name for p in path.parent.iterdir()) == ["module.yaml"]
    assert for_observe(done.observations) is ExitCode.PARTIAL


def test_two_modules_read_from_one_file_are_both_written_once(tmp_path: Path) -> None:
    """A module folder that links to another's manifest: the file is written once, and the
    second module is told so, not that the file "changed on disk"."""
    root, path, _ = planned(tmp_path)
    twin = root / "modules" / "honcho-twin"
    twin.mkdir()
    (twin / "module.yaml").symlink_to(path)
    store = Store(Database(memory=True))
    live = host(make_container(name="honcho", config_image=f"{REPO}:3.0.3", image_id=ID303))
    store.save(Collection(datetime(2026, 11, 27, 10, 0, tzinfo=UTC), (live,)), "test")
    scope = load_declared(root).modules
    plan = api.observe(scope, store, CollectOptions(), root, snapshot="latest")
    assert [o.status for o in plan.observations] == [ObserveStatus.CHANGED] * 2
    done = api.apply_observed(plan, root)
    assert [(o.status, o.written, o.reason) for o in done.observations] == [
        (ObserveStatus.CHANGED, True, None)
    ] * 2
    assert path.read_text() == MANIFEST.replace(f"3.0.6@{D306}", f"3.0.3@{D303}")
    assert (twin / "module.yaml").is_symlink()
    assert for_observe(done.observations) is ExitCode.OK
