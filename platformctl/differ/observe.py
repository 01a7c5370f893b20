"""What ``observe`` would record for each module, from its verdict and live evidence. Pure.

A module's live state is *clear* when its host was read, it has running containers, they all
run one image under one name, and that image has exactly one registry digest in the
repository it runs from. Only then is there an audit record to write (docs/observe.md,
"When the live state is clear").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import assert_never

from platformctl.declared.edit import ManifestEdit, Observed
from platformctl.declared.model import CheckedModule, ExternalModule, InvalidModule, Module
from platformctl.declared.reference import (
    ImageRef,
    short_digest,
    started_by_id,
    try_parse_reference,
)
from platformctl.differ.model import LiveContainer, ModuleStatus, ModuleVerdict, Report


class ObserveStatus(StrEnum):
    """What ``observe`` does with one module."""

    CHANGED = "changed"
    """The record differs from what runs: written with ``--write``, else pending."""
    UNCHANGED = "unchanged"
    """The record already says what runs."""
    SKIPPED = "skipped"
    """Not observed: the live state is not clear, or the manifest cannot be edited."""


@dataclass(frozen=True)
class Observation:
    """The outcome for one module: its new record, or why there is none."""

    verdict: ModuleVerdict
    status: ObserveStatus
    observed: Observed | None = None
    reason: str | None = None
    counts: bool = True
    """False for a skip that is not a failure to observe (``orchestrator: external``)."""
    edit: ManifestEdit | None = None
    written: bool = False

    @property
    def module(self) -> Module:
        """The module observed."""
        return self.verdict.module


@dataclass(frozen=True)
class ObserveReport:
    """Everything one ``observe`` run decided, and the drift-check report it started from."""

    report: Report
    observations: tuple[Observation, ...]
    write: bool


def observe(verdict: ModuleVerdict, at: datetime) -> Observation:
    """The new record for the module of ``verdict``, observed at ``at`` (the snapshot's time).

    ``status`` is CHANGED or UNCHANGED with ``observed`` set, or SKIPPED with a reason.
    """
    module = verdict.module
    match module:
        case InvalidModule():
            return _skip(verdict, f"invalid: {module.problem}")
        case ExternalModule():
            return _skip(verdict, "orchestrator: external; nothing to observe", counts=False)
        case CheckedModule():
            return _observe_checked(verdict, module, at)
        case _:
            assert_never(module)


def _observe_checked(verdict: ModuleVerdict, module: CheckedModule, at: datetime) -> Observation:
    # An accepted drift is judged by what runs underneath: the audit record says what runs,
    # and the acceptance then shows up as no longer needed (docs/observe.md).
    match verdict.real_status:
        case ModuleStatus.UNREACHABLE | ModuleStatus.ERROR | ModuleStatus.NOT_COLLECTED:
            return _skip(verdict, verdict.reason)
        case ModuleStatus.MISSING:
            return _skip(verdict, f"no container: {verdict.reason}")
        case ModuleStatus.STOPPED:
            return _skip(verdict, f"no running container: {verdict.reason}")
        case ModuleStatus.INVALID | ModuleStatus.SKIPPED:
            return _skip(verdict, verdict.reason)
        case (
            ModuleStatus.OK
            | ModuleStatus.DRIFT
            | ModuleStatus.UNVERIFIABLE
            | ModuleStatus.ACCEPTED  # real_status is never accepted; here for completeness
        ):
            pass
        case _:
            assert_never(verdict.real_status)

    judged = [c for c in verdict.live if c.judged]  # as the verdict judged them
    if not judged:
        return _skip(verdict, "no running container")
    images = sorted({(c.image, c.image_id) for c in judged})
    if len(images) > 1:
        seen = ", ".join(
            f"{c.container}: {c.image} ({short_digest(c.image_id)})"
            for c in sorted(judged, key=lambda c: c.container)
        )
        return _skip(verdict, f"replicas run different images ({seen})")
    live = judged[0]
    by_id = started_by_id(live.image, live.image_id, (module.declared,))
    ref = None if by_id else try_parse_reference(live.image)
    if ref is None:
        return _skip(verdict, f"{live.container} runs {live.image!r}, not a repository reference")
    try:
        digest = _registry_digest(live, ref, module.declared)
    except _Unclear as unclear:
        return _skip(verdict, str(unclear))

    tag = ref.tag if ref.tag or ref.digest else "latest"
    repository = _spelled_repository(module, ref, live.image)
    observed = Observed(repository=repository, tag=tag, digest=digest, at=at)
    if _same_record(module.declared, ref, tag, digest):
        return Observation(verdict, ObserveStatus.UNCHANGED, observed=observed)
    return Observation(verdict, ObserveStatus.CHANGED, observed=observed)


class _Unclear(Exception):
    """Why the registry digest of a running image cannot be told."""


def _registry_digest(live: LiveContainer, ref: ImageRef, declared: ImageRef) -> str:
    """The one registry digest of the running image in its own repository.

    Raises _Unclear with the reason when there is none, or several to choose from.
    """
    parsed = [r for r in (try_parse_reference(d) for d in live.digests) if r and r.digest]
    same = sorted({r.digest for r in parsed if r.repository == ref.repository and r.digest})
    if ref.digest is not None:
        # Deployed by digest: that digest is the answer when the image really carries it.
        if ref.digest in same or ref.digest == live.image_id:
            return ref.digest
        raise _Unclear(
            f"{live.container} was started as {live.image} but its image carries no such "
            "registry digest"
        )
    if len(same) == 1:
        return same[0]
    if same:
        if declared.repository == ref.repository and declared.digest in same:
            return declared.digest
        raise _Unclear(
            f"image {short_digest(live.image_id)} has several registry digests in "
            f"{ref.familiar_repository} ({', '.join(short_digest(d) for d in same)}); "
            "cannot tell which one was deployed"
        )
    elsewhere = sorted({r.familiar_repository for r in parsed})
    where = f" (only in {', '.join(elsewhere)})" if elsewhere else ""
    raise _Unclear(
        f"image {short_digest(live.image_id)} of {live.container} has no registry digest in "
        f"{ref.familiar_repository}{where}: built or loaded locally, or pushed elsewhere; "
        "recording a tag without a digest would be a false audit"
    )


def _spelled_repository(module: CheckedModule, ref: ImageRef, live_image: str) -> str:
    """The repository as the manifest already spells it when it is the same one (a minimal
    diff), else as the container's ``Config.Image`` spells it."""
    if module.declared.repository == ref.repository:
        return _name_part(module.declared_raw)
    return _name_part(live_image)


def _name_part(reference: str) -> str:
    """``reference`` without its digest and tag, spelled as written."""
    name = reference.strip().split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def _same_record(declared: ImageRef, ref: ImageRef, tag: str | None, digest: str) -> bool:
    """True when the manifest already records this image: same repository and digest, and the
    same tag where both name one (a digest-only record, or a deploy by digest, names none)."""
    if declared.repository != ref.repository or declared.digest != digest:
        return False
    deployed_by_digest = ref.tag is None and ref.digest is not None
    return declared.tag is None or deployed_by_digest or declared.tag == tag


def _skip(verdict: ModuleVerdict, reason: str, counts: bool = True) -> Observation:
    return Observation(verdict, ObserveStatus.SKIPPED, reason=reason, counts=counts)
