"""The declared state: what the platform repository says should run where."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from platformctl.declared.reference import ImageRef


class Orchestrator(StrEnum):
    """How a module's containers are run on its host."""

    DOCKER_COMPOSE = "docker-compose"
    DOCKER = "docker"
    EXTERNAL = "external"


@dataclass(frozen=True)
class ComposeImage:
    """What a compose stack declares for one service."""

    path: Path
    project: str
    service: str
    raw: str | None
    """The ``image:`` value after interpolation (None for ``build:`` only or unresolved)."""
    image: ImageRef | None
    resolved: bool
    build_only: bool = False
    reason: str | None = None
    """Why there is no comparable image (unresolved variable, build only, bad reference)."""


@dataclass(frozen=True)
class Acceptance:
    """``spec.runtime.drift_accepted``: a deliberate difference, why, and until when
    (docs/design.md, "Accepted drift")."""

    reason: str
    until: str
    """The expiry as written, normalized: ``2026-12-15`` or ``2026-12-15T12:00:00Z``."""
    expires: datetime
    """The first moment the acceptance no longer holds (a date holds through its whole UTC day)."""
    digest: str | None = None
    """Only a live image with this digest (a RepoDigest or the image ID) is accepted."""


@dataclass(frozen=True)
class CheckedModule:
    """A usable manifest whose containers can be checked: docker or docker-compose."""

    name: str
    path: Path
    host: str
    orchestrator: Orchestrator
    declared_raw: str
    """``image_observed`` as the manifest spells it (the mapping form joined into one)."""
    declared: ImageRef
    compose_service: str | None = None
    compose_project: str | None = None
    container: str | None = None
    compose: ComposeImage | None = None
    accepted: Acceptance | None = None


@dataclass(frozen=True)
class InvalidModule:
    """A manifest (or its compose stack) that cannot be used, and why."""

    name: str
    path: Path
    problem: str
    host: None = None


@dataclass(frozen=True)
class ExternalModule:
    """``orchestrator: external``: run by someone else, nothing to check."""

    name: str
    path: Path
    host: str | None = None

    @property
    def orchestrator(self) -> Orchestrator:
        """Always ``external``."""
        return Orchestrator.EXTERNAL


Module = CheckedModule | InvalidModule | ExternalModule
"""Any module of a platform repository; ``match`` on the type to tell them apart."""


@dataclass(frozen=True)
class DeclaredState:
    """Every module of a platform repository, in name order."""

    modules: tuple[Module, ...]

    def names(self) -> list[str]:
        """Module names, sorted."""
        return [m.name for m in self.modules]

    def select(self, names: list[str] | tuple[str, ...]) -> tuple[Module, ...]:
        """The modules named, in the order first named (all when none are named); unknown
        names raise KeyError. A name two manifests use selects both: the first, and the
        duplicate that is invalid for it."""
        if not names:
            return self.modules
        by_name: dict[str, list[Module]] = {}
        for m in self.modules:
            by_name.setdefault(m.name, []).append(m)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError(missing[0])
        return tuple(m for n in dict.fromkeys(names) for m in by_name[n])


def hosts_in_scope(modules: Iterable[Module]) -> list[str]:
    """The hosts whose live state the given modules need, sorted."""
    return sorted({m.host for m in modules if isinstance(m, CheckedModule)})
