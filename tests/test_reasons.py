"""The exact words a user reads for each verdict: the reason line under a table row and the
JSON's ``reason`` and check ``note``. Pinned, so a change to them is a decision, not a slip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from platformctl.collector.model import HostResult, HostStatus, Image
from platformctl.declared.model import Orchestrator
from platformctl.differ import diff
from platformctl.differ.compare import judge
from platformctl.differ.model import ModuleVerdict
from platformctl.snapshots.model import SnapshotStatus
from tests.test_differ import (
    D306,
    ID303,
    ID306,
    REPO,
    host,
    make_compose,
    make_container,
    make_module,
)
from tests.test_verdict_rules import LOCAL, UNPUSHED, replica

NO_STACK = "no compose stack defines the service"
UNCONFIRMED = (
    "live image sha256:b1b1b1b1b1b1… has no registry digest (built or loaded locally, or "
    "orphaned by a later pull); the declared digest cannot be confirmed"
)
INDEX = (
    "same repository and tag, other digest; if one is a platform manifest and the other a "
    "multi-arch index digest, this can be false drift (see README)"
)
DOCKER = {
    "orchestrator": Orchestrator.DOCKER,
    "container": "honcho",
    "compose_service": None,
    "compose_project": None,
}
WRONG = {"config_image": f"{REPO}:3.0.3", "image_id": ID303}

CASES: list[tuple[str, Callable[[], ModuleVerdict], str, str]] = [
    ("ok", lambda: judge(make_module(), host(make_container())), "ok", "matches"),
    (
        "mirror",
        lambda: judge(
            make_module(),
            host(make_container(), images=(Image(ID306, (), (f"mirror.io/x/honcho@{D306}",)),)),
        ),
        "ok",
        "digest matched through another repository (mirror.io/x/honcho)",
    ),
    (
        "image-id",
        lambda: judge(
            make_module(), host(make_container(image_id=D306), images=(Image(D306, (), ()),))
        ),
        "ok",
        "digest matched the image ID (containerd image store)",
    ),
    (
        "unpinned",
        lambda: judge(make_module(image=f"{REPO}:3.0.6"), host(make_container())),
        "ok",
        "unpinned: declared by tag only, no digest",
    ),
    (
        "compose-note-is-not-the-reason",
        lambda: judge(
            make_module(compose=make_compose(None, reason="variable X is not set in .env")),
            host(make_container()),
        ),
        "ok",
        "matches",
    ),
    (
        "seed",
        lambda: judge(make_module(), host(make_container(**WRONG))),
        "drift",
        "manifest-live (apps-honcho-api-1): tag 3.0.6 → 3.0.3, "
        "digest sha256:060606060606… → sha256:030303030303…",
    ),
    (
        "compose-drift",
        lambda: judge(make_module(compose=make_compose(f"{REPO}:3.0.5")), host(make_container())),
        "drift",
        "compose-live (apps-honcho-api-1): tag 3.0.5 → 3.0.6; manifest-compose: tag 3.0.6 → 3.0.5",
    ),
    (
        "three-of-five-drifts",
        lambda: judge(
            make_module(compose=make_compose(f"{REPO}:3.0.5")),
            host(replica("a", **WRONG), replica("b", **WRONG)),
        ),
        "drift",
        "manifest-live (a): tag 3.0.6 → 3.0.3, digest sha256:060606060606… → "
        "sha256:030303030303…; compose-live (a): tag 3.0.5 → 3.0.3; "
        "manifest-live (b): tag 3.0.6 → 3.0.3, digest sha256:060606060606… → "
        "sha256:030303030303…",
    ),
    (
        "index-digest",
        lambda: judge(
            make_module(image=f"{REPO}:3.0.6@sha256:" + "ee" * 32), host(make_container())
        ),
        "drift",
        "manifest-live (apps-honcho-api-1): digest sha256:eeeeeeeeeeee… → sha256:060606060606… "
        "(same repository and tag, other digest; if one is a platform manifest and the other a "
        "multi-arch index digest, this can be false drift (see README))",
    ),
    (
        "unverifiable",
        lambda: judge(make_module(), host(make_container(image_id=UNPUSHED), images=(LOCAL,))),
        "unverifiable",
        f"manifest-live (apps-honcho-api-1): {UNCONFIRMED}",
    ),
    (
        "two-of-three-unverifiable",
        lambda: judge(
            make_module(),
            host(*(replica(n, image_id=UNPUSHED) for n in "abc"), images=(LOCAL,)),
        ),
        "unverifiable",
        f"manifest-live (a): {UNCONFIRMED}; manifest-live (b): {UNCONFIRMED}",
    ),
    (
        "missing-compose",
        lambda: judge(make_module(), host()),
        "missing",
        "no container of compose service 'honcho-api' (project 'apps') on rs2000",
    ),
    (
        "missing-any-project",
        lambda: judge(make_module(compose_project=None), host()),
        "missing",
        "no container of compose service 'honcho-api' on rs2000",
    ),
    (
        "missing-docker",
        lambda: judge(make_module(**DOCKER), host()),
        "missing",
        "no container named 'honcho' on rs2000",
    ),
    (
        "stopped-one",
        lambda: judge(make_module(), host(make_container(status="exited", running=False))),
        "stopped",
        "container of compose service 'honcho-api' (project 'apps') exists but is not running "
        "(exited)",
    ),
    (
        "stopped-two",
        lambda: judge(
            make_module(),
            host(
                replica("a", status="exited", running=False),
                replica("b", status="created", running=False),
            ),
        ),
        "stopped",
        "container of compose service 'honcho-api' (project 'apps') exists (2 containers) but is "
        "not running (created, exited)",
    ),
    (
        "stopped-docker",
        lambda: judge(
            make_module(**DOCKER),
            host(make_container(name="honcho", status="paused", running=True)),
        ),
        "stopped",
        "container named 'honcho' exists but is not running (paused)",
    ),
    (
        "unreachable",
        lambda: judge(make_module(), HostResult("rs2000", HostStatus.AUTH_FAILED, "bad key")),
        "unreachable",
        "host rs2000: bad key",
    ),
    (
        "error",
        lambda: judge(make_module(), HostResult("rs2000", HostStatus.ERROR, "docker info failed")),
        "error",
        "host rs2000: docker info failed",
    ),
    (
        "not-collected",
        lambda: judge(make_module(), None),
        "not-collected",
        "the snapshot holds no data for host rs2000",
    ),
    (
        "not-collected-in-a-replay",
        lambda: diff(
            (make_module(),),
            (),
            snapshot_id=7,
            taken_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
            snapshot_status=SnapshotStatus.COMPLETE,
            replay=True,
            now=datetime(2026, 11, 27, 10, tzinfo=UTC),
        ).modules[0],
        "not-collected",
        "snapshot 7 holds no data for host rs2000",
    ),
]


@pytest.mark.parametrize(
    ("make", "status", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_verdict_reads_exactly(
    make: Callable[[], ModuleVerdict], status: str, reason: str
) -> None:
    verdict = make()
    assert (str(verdict.status), verdict.reason) == (status, reason)


def notes(verdict: ModuleVerdict) -> list[tuple[str, str, str | None]]:
    return [(c.check, str(c.result), c.note) for c in verdict.checks]


def test_check_notes_say_why_a_check_matched_or_was_skipped() -> None:
    assert notes(judge(make_module(), host(make_container()))) == [
        ("manifest-live", "ok", None),
        ("compose-live", "skipped", NO_STACK),
        ("manifest-compose", "skipped", NO_STACK),
    ]
    unresolved = make_compose(None, reason="variable X is not set in .env")
    assert notes(judge(make_module(compose=unresolved), host(make_container()))) == [
        ("manifest-live", "ok", None),
        ("compose-live", "skipped", "variable X is not set in .env"),
        ("manifest-compose", "skipped", "variable X is not set in .env"),
    ]
    pinless = make_compose(f"{REPO}:3.0.6")
    assert notes(judge(make_module(compose=pinless), host(make_container()))) == [
        ("manifest-live", "ok", None),
        ("compose-live", "ok", "the compose image pins no digest; compared by tag"),
        ("manifest-compose", "ok", None),
    ]
    index = judge(make_module(image=f"{REPO}:3.0.6@sha256:" + "ee" * 32), host(make_container()))
    assert notes(index)[0] == ("manifest-live", "drift", INDEX)
    # A host problem leaves the static check, and only it.
    down = judge(make_module(), HostResult("rs2000", HostStatus.UNREACHABLE, "refused"))
    assert notes(down) == [("manifest-compose", "skipped", NO_STACK)]
    assert notes(judge(make_module(**DOCKER), None)) == []
