"""Accepted drift: a module's ``drift_accepted`` applied to its verdict at a given time.

Pure: the time is an argument, never read here, so every rule is tested on values and a
replay is judged exactly like a live run at the same moment (docs/design.md, "Accepted drift").
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import assert_never

from platformctl.declared.model import Acceptance, CheckedModule
from platformctl.declared.reference import elide_digests
from platformctl.differ.model import (
    ACCEPTABLE,
    AcceptanceOutcome,
    AcceptanceVerdict,
    LiveContainer,
    ModuleStatus,
    ModuleVerdict,
)


def accept(verdict: ModuleVerdict, now: datetime) -> ModuleVerdict:
    """``verdict`` (as the hosts show it) with its module's acceptance applied at ``now``."""
    module = verdict.module
    if not isinstance(module, CheckedModule) or module.accepted is None:
        return verdict
    acceptance = module.accepted
    outcome = outcome_at(acceptance, verdict.status, verdict.live, now)
    marked = replace(verdict, acceptance=AcceptanceVerdict(acceptance, outcome, verdict.status))
    match outcome:
        case AcceptanceOutcome.APPLIED:
            return replace(marked, status=ModuleStatus.ACCEPTED)
        case AcceptanceOutcome.EXPIRED:
            reason = f"acceptance expired on {acceptance.until}; {verdict.reason}"
            return replace(marked, reason=reason)
        case AcceptanceOutcome.LIVE_CHANGED:
            seen = ", ".join(sorted({_short(_shown(c)) for c in _judged(verdict.live)}))
            return replace(
                marked,
                reason=f"live changed since it was accepted (accepted "
                f"{_short(acceptance.digest or '')}, live {seen or 'no container'}); "
                f"{verdict.reason}",
            )
        case AcceptanceOutcome.NOT_NEEDED:
            warning = (
                f"drift_accepted is no longer needed: the module is ok; remove it from "
                f"{module.path}"
            )
            return replace(marked, warnings=(*verdict.warnings, warning))
        case AcceptanceOutcome.NOT_JUDGED:
            return marked
        case _:
            assert_never(outcome)


def outcome_at(
    acceptance: Acceptance,
    status: ModuleStatus,
    live: tuple[LiveContainer, ...],
    now: datetime,
) -> AcceptanceOutcome:
    """What ``acceptance`` does to a module with ``status`` and ``live`` containers at ``now``.

    The order matters: an ok module makes any acceptance stale, even an expired one (remove
    it either way); expiry is checked before the digest, because an expired acceptance says
    nothing about which image it was for.
    """
    if status is ModuleStatus.OK:
        return AcceptanceOutcome.NOT_NEEDED
    if status not in ACCEPTABLE:
        return AcceptanceOutcome.NOT_JUDGED
    if now >= acceptance.expires:
        return AcceptanceOutcome.EXPIRED
    if acceptance.digest is not None and not covers(acceptance.digest, live):
        return AcceptanceOutcome.LIVE_CHANGED
    return AcceptanceOutcome.APPLIED


def covers(digest: str, live: tuple[LiveContainer, ...]) -> bool:
    """Whether every judged live container runs the image ``digest`` names.

    The judged containers are the running ones with any paused or restarting one beside them,
    or all of them when none runs (the same containers the comparison judges). A digest is
    matched against the image's RepoDigests and its image ID: a locally built image
    (``unverifiable``) has only the latter. No container at all is never covered: the accepted
    image is not what is there.
    """
    judged = _judged(live)
    return bool(judged) and all(digest in _digests(c) for c in judged)


def _judged(live: tuple[LiveContainer, ...]) -> tuple[LiveContainer, ...]:
    if not any(c.running for c in live):
        return live
    return tuple(c for c in live if c.judged)


def _digests(c: LiveContainer) -> set[str]:
    return {d.split("@", 1)[1] for d in c.digests if "@" in d} | {c.image_id}


def _shown(c: LiveContainer) -> str:
    """The live image as a digest comparable with the accepted one: a RepoDigest if any."""
    return next((d.split("@", 1)[1] for d in c.digests if "@" in d), c.image_id)


def _short(digest: str) -> str:
    return elide_digests(digest)
