"""Pure comparison: (declared modules, host results) → verdicts. No I/O.

The rules and the status precedence are written down in docs/design.md, "Comparison".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import assert_never

from platformctl.collector.model import Container, HostResult, HostState, HostStatus, Image
from platformctl.declared.model import (
    CheckedModule,
    ComposeImage,
    ExternalModule,
    InvalidModule,
    Module,
    Orchestrator,
)
from platformctl.declared.reference import (
    ImageRef,
    elide_digests,
    names_image_id,
    started_by_id,
    try_parse_reference,
)
from platformctl.differ.accepted import accept
from platformctl.differ.fields import Changes, field_changes
from platformctl.differ.model import (
    Check,
    CheckKind,
    CheckResult,
    LiveContainer,
    ModuleStatus,
    ModuleVerdict,
)

MANIFEST_LIVE = CheckKind.MANIFEST_LIVE
COMPOSE_LIVE = CheckKind.COMPOSE_LIVE
MANIFEST_COMPOSE = CheckKind.MANIFEST_COMPOSE


def judge_all(
    modules: Iterable[Module],
    hosts: Mapping[str, HostResult],
    snapshot_label: str,
    *,
    now: datetime,
) -> tuple[ModuleVerdict, ...]:
    """Judge every module against the host results it needs, with acceptances applied at
    ``now``."""
    return tuple(
        accept(judge(m, hosts.get(m.host) if m.host else None, snapshot_label), now)
        for m in modules
    )


def judge(
    module: Module, host: HostResult | None, snapshot_label: str = "", *, explain: bool = True
) -> ModuleVerdict:
    """The verdict for one module given its host's result (None: host not collected), as the
    host shows it: ``drift_accepted`` is applied on top by :func:`accept`.

    ``explain=False`` skips deepdiff's field-level explanation where only the status matters
    (history judges a module against every distinct past state).
    """
    match module:
        case InvalidModule():
            return ModuleVerdict(module, ModuleStatus.INVALID, module.problem)
        case ExternalModule():
            return ModuleVerdict(module, ModuleStatus.SKIPPED, "orchestrator: external")
        case CheckedModule():
            return _judge_checked(module, host, snapshot_label, explain)
        case _:
            assert_never(module)


def _judge_checked(
    module: CheckedModule, host: HostResult | None, snapshot_label: str, explain: bool
) -> ModuleVerdict:
    static = (
        (manifest_compose(module.declared, module.compose, explain),) if _is_compose(module) else ()
    )

    if host is None:
        return ModuleVerdict(
            module,
            ModuleStatus.NOT_COLLECTED,
            f"{snapshot_label or 'the snapshot'} holds no data for host {module.host}",
            checks=static,
        )
    match host.status:
        case HostStatus.UNREACHABLE | HostStatus.AUTH_FAILED:
            return ModuleVerdict(
                module,
                ModuleStatus.UNREACHABLE,
                f"host {module.host}: {host.reason}",
                checks=static,
            )
        case HostStatus.ERROR:
            return ModuleVerdict(
                module, ModuleStatus.ERROR, f"host {module.host}: {host.reason}", checks=static
            )
        case HostStatus.OK:
            pass
        case _:
            assert_never(host.status)
    if host.state is None:
        return ModuleVerdict(
            module, ModuleStatus.ERROR, f"host {module.host}: {host.reason}", checks=static
        )

    containers = sorted(_containers_for(module, host.state), key=lambda c: c.name)
    live = tuple(_evidence(c, host.state.image(c.image_id)) for c in containers)
    if not containers:
        return ModuleVerdict(
            module,
            ModuleStatus.MISSING,
            f"no {_what(module)} on {module.host}",
            checks=static,
        )
    running = [c for c in containers if c.is_running]
    if not running:
        states = ", ".join(sorted({c.status for c in containers}))
        return ModuleVerdict(
            module,
            ModuleStatus.STOPPED,
            f"{_what(module)} {_exists(len(containers))} but is not running ({states})",
            live=live,
            checks=static,
        )

    checks: list[Check] = []
    # Judged: the running replicas, and those that run again with nobody deploying anything
    # (LiveContainer.judged); exited, created or dead leftovers are evidence only
    # (docs/design.md, "Comparison"). The evidence is in the containers' order.
    judged = running
    if len(running) < len(containers):
        judged = [c for c, shown in zip(containers, live, strict=True) if shown.judged]
    for c in judged:
        image = host.state.image(c.image_id)
        checks.append(manifest_live(module.declared, c, image, explain))
        if _is_compose(module):
            checks.append(compose_live(module.compose, c, image, explain))
    checks.extend(static)
    status, reason = _overall(checks)
    return ModuleVerdict(module, status, reason, live=live, checks=tuple(checks))


def _is_compose(module: CheckedModule) -> bool:
    return module.orchestrator is Orchestrator.DOCKER_COMPOSE


def _what(module: CheckedModule) -> str:
    if module.orchestrator is Orchestrator.DOCKER:
        return f"container named {module.container!r}"
    project = f" (project {module.compose_project!r})" if module.compose_project else ""
    return f"container of compose service {module.compose_service!r}{project}"


def _exists(count: int) -> str:
    return "exists" if count == 1 else f"exists ({count} containers)"


def _containers_for(module: CheckedModule, state: HostState) -> list[Container]:
    """Match by compose labels (never by name), skipping one-off ``compose run`` containers."""
    if module.orchestrator is Orchestrator.DOCKER:
        return list(state.named(module.container)) if module.container is not None else []
    if module.compose_service is None:
        return []
    return [
        c
        for c in state.of_service(module.compose_service)
        if not c.oneoff and (module.compose_project is None or c.project == module.compose_project)
    ]


def _evidence(c: Container, image: Image | None) -> LiveContainer:
    return LiveContainer(
        container=c.name,
        image=c.config_image,
        image_id=c.image_id,
        digests=image.repo_digests if image else (),
        state=c.status,
        running=c.is_running,
    )


def _overall(checks: list[Check]) -> tuple[ModuleStatus, str]:
    drift = [c for c in checks if c.result is CheckResult.DRIFT]
    if drift:
        return ModuleStatus.DRIFT, "; ".join(_describe(c) for c in drift[:3])
    unverifiable = [c for c in checks if c.result is CheckResult.UNVERIFIABLE]
    if unverifiable:
        return ModuleStatus.UNVERIFIABLE, "; ".join(
            f"{c.check}{_on(c)}: {c.note}" for c in unverifiable[:2]
        )
    notes = [c.note for c in checks if c.check == MANIFEST_LIVE and c.note]
    return ModuleStatus.OK, notes[0] if notes else "matches"


def _on(check: Check) -> str:
    return f" ({check.container})" if check.container else ""


def _describe(check: Check) -> str:
    parts = [f"{key} {_short(old)} → {_short(new)}" for key, (old, new) in check.changes.items()]
    text = f"{check.check}{_on(check)}: {', '.join(parts) or check.note or 'differs'}"
    # A note that explains the drift (the multi-arch hint) belongs where people read: the
    # table's reason line, not only the JSON.
    return f"{text} ({check.note})" if parts and check.note else text


def _short(value: str | None) -> str:
    return "none" if value is None else elide_digests(value)


def _with_tag(ref: ImageRef) -> ImageRef:
    if ref.tag is None and ref.digest is None:
        return ImageRef(ref.domain, ref.path, "latest", None)
    return ref


def _live_name(
    c: Container, image: Image | None, expected: ImageRef
) -> tuple[str | None, str | None, str | None]:
    """The repository and tag the container runs, and a note when they come from its image
    because it was started by image ID, which names neither (docs/design.md, "Comparison"):
    its image's tags, the declared name first; else the repository of its registry digests,
    with the tag unknown (None); else neither (both None, with a note that says so)."""
    if names_image_id(c.config_image, c.image_id):
        named = map(try_parse_reference, image.repo_tags if image else ())
        tags = [_with_tag(r) for r in named if r]
        if started_by_id(c.config_image, c.image_id, (expected, *tags)):
            return _image_name(expected, tags, image)
    live = try_parse_reference(c.config_image)
    if live is None:
        return c.config_image, None, None
    if live.tag is None and live.digest is not None:
        return _pinned_name(live, image, expected)
    live = _with_tag(live)
    return live.repository, live.tag, None


def _pinned_name(
    live: ImageRef, image: Image | None, expected: ImageRef
) -> tuple[str | None, str | None, str | None]:
    """The repository and tag of a container started by digest (``repo@sha256:…``: a compose
    file that pins one, content trust), which names no tag: its image's tags in that
    repository, the declared one first; else the tag is unknown (None, with a note)."""
    named = map(try_parse_reference, image.repo_tags if image else ())
    tags = [t for t in (_with_tag(r) for r in named if r) if t.repository == live.repository]
    if not tags:
        return live.repository, None, "started by digest, which names no tag"
    wanted = expected.tag or "latest"
    tag = wanted if any(t.tag == wanted for t in tags) else min(str(t.tag) for t in tags)
    return live.repository, tag, f"started by digest; its image is tagged {live.repository}:{tag}"


def _image_name(
    expected: ImageRef, tags: list[ImageRef], image: Image | None
) -> tuple[str | None, str | None, str | None]:
    if tags:
        wanted = (expected.repository, expected.tag or "latest")

        def rank(r: ImageRef) -> tuple[bool, bool]:  # the declared name, else its repository
            return (r.repository, r.tag) != wanted, r.repository != wanted[0]

        name = min(tags, key=rank)
        return name.repository, name.tag, f"started by image ID; its image is tagged {name}"
    digests = map(try_parse_reference, image.repo_digests if image else ())
    repositories = sorted({r.repository for r in digests if r})
    if not repositories:
        return None, None, "started by image ID; its image has neither tag nor registry digest"
    repository = expected.repository if expected.repository in repositories else repositories[0]
    note = f"started by image ID; its untagged image has digests of {repository}"
    return repository, None, note


def compare_image(
    check: CheckKind, expected: ImageRef, c: Container, image: Image | None, explain: bool
) -> Check:
    """Compare one expected reference with one running container (manifest- or compose-live)."""
    live_repo, live_tag, named_by = _live_name(c, image, expected)
    # Started by image ID with no tag on the image: the tag it runs is unknown, not absent.
    tag_unknown = named_by is not None and live_tag is None
    if expected.digest is None:
        wanted: dict[str, str | None] = {}
        seen: dict[str, str | None] = {}
        if live_repo is not None:
            wanted["repository"], seen["repository"] = expected.repository, live_repo
        if not tag_unknown:
            wanted["tag"], seen["tag"] = expected.tag or "latest", live_tag
        changes = field_changes(wanted, seen, explain)
        if changes:
            return Check(check, CheckResult.DRIFT, changes, note=named_by, container=c.name)
        if tag_unknown:
            return Check(
                check,
                CheckResult.UNVERIFIABLE,
                {},
                note=f"{named_by}: the declared tag cannot be confirmed",
                container=c.name,
            )
        unpinned = (
            "unpinned: declared by tag only, no digest"
            if check == MANIFEST_LIVE
            else "the compose image pins no digest; compared by tag"
        )
        return Check(
            check,
            CheckResult.OK,
            note=f"{unpinned}; {named_by}" if named_by else unpinned,
            container=c.name,
        )

    digests = [
        r
        for r in (try_parse_reference(d) for d in (image.repo_digests if image else ()))
        if r is not None and r.digest
    ]
    same_repo = [r for r in digests if r.repository == expected.repository]
    matched = next((r for r in same_repo + digests if r.digest == expected.digest), None)
    if matched is not None:
        note = None
        if matched.repository != expected.repository:
            note = f"digest matched through another repository ({matched.familiar_repository})"
        return Check(check, CheckResult.OK, note=note, container=c.name)
    if c.image_id == expected.digest:
        return Check(
            check,
            CheckResult.OK,
            note="digest matched the image ID (containerd image store)",
            container=c.name,
        )

    observed_digest = (same_repo or digests)[0].digest if digests else None
    wanted = {"repository": expected.repository, "tag": expected.tag, "digest": expected.digest}
    seen = {"repository": live_repo, "tag": live_tag, "digest": observed_digest}
    if expected.tag is None or tag_unknown:
        del wanted["tag"], seen["tag"]
    if live_repo is None:  # started by the ID of an image with no name at all: the digest tells
        del wanted["repository"], seen["repository"]
    changes = field_changes(wanted, seen, explain)
    if not digests:
        visible = {k: v for k, v in changes.items() if k != "digest"}
        if visible:
            return Check(check, CheckResult.DRIFT, changes, note=named_by, container=c.name)
        return Check(
            check,
            CheckResult.UNVERIFIABLE,
            {},
            note=f"live image {_short(c.image_id)} has no registry digest (built or loaded "
            "locally, or orphaned by a later pull); the declared digest cannot be confirmed",
            container=c.name,
        )
    note = named_by
    if set(changes) == {"digest"} and "repository" in wanted:
        same = "same repository and tag" if "tag" in wanted else "same repository"
        note = (
            f"{same}, other digest; if one is a platform manifest and the other a multi-arch "
            "index digest, this can be false drift (see README)"
        )
    return Check(check, CheckResult.DRIFT, changes, note=note, container=c.name)


def manifest_live(declared: ImageRef, c: Container, image: Image | None, explain: bool) -> Check:
    """The manifest–live check for one running container."""
    return compare_image(MANIFEST_LIVE, declared, c, image, explain)


def compose_live(
    compose: ComposeImage | None, c: Container, image: Image | None, explain: bool
) -> Check:
    """The compose–live check: the container against what its compose file declares."""
    if compose is None:
        return Check(
            COMPOSE_LIVE,
            CheckResult.SKIPPED,
            note="no compose stack defines the service",
            container=c.name,
        )
    if compose.image is None:
        return Check(COMPOSE_LIVE, CheckResult.SKIPPED, note=compose.reason, container=c.name)
    return compare_image(COMPOSE_LIVE, compose.image, c, image, explain)


def manifest_compose(declared: ImageRef, compose: ComposeImage | None, explain: bool) -> Check:
    """The static manifest–compose check: needs no host."""
    if compose is None:
        return Check(
            MANIFEST_COMPOSE, CheckResult.SKIPPED, note="no compose stack defines the service"
        )
    if compose.image is None:
        return Check(MANIFEST_COMPOSE, CheckResult.SKIPPED, note=compose.reason)
    img = compose.image
    wanted: dict[str, str | None] = {"repository": declared.repository}
    seen: dict[str, str | None] = {"repository": img.repository}
    # A manifest's bare `nginx` is nginx:latest, as docker pulls it; `nginx@sha256:…` has no tag.
    declared_tag = declared.tag if declared.tag or declared.digest else "latest"
    if declared_tag is not None and img.tag is not None:
        wanted["tag"], seen["tag"] = declared_tag, img.tag
    if declared.digest is not None and img.digest is not None:
        wanted["digest"], seen["digest"] = declared.digest, img.digest
    changes: Changes = field_changes(wanted, seen, explain)
    if changes:
        return Check(MANIFEST_COMPOSE, CheckResult.DRIFT, changes)
    return Check(MANIFEST_COMPOSE, CheckResult.OK)
