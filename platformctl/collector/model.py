"""What the collector observes: containers, images and one result per host.

Only the fields docs/design.md lists under "What is recorded" exist here. ``docker inspect``
output also carries environment variables, commands and labels that hold secrets; the remote
script never even sends them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Any

RUNNING = "running"
"""The one ``State.Status`` that counts as running. Docker's states are stored as docker spells
them (``paused``, ``restarting``, ``exited``, ``created``, ``dead`` and any later one)."""


class HostStatus(StrEnum):
    """How collecting one host went."""

    OK = "ok"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth-failed"
    ERROR = "error"


@dataclass(frozen=True, order=True)
class Container:
    """One container as ``docker container inspect`` describes it (whitelisted fields)."""

    id: str
    name: str
    created: str | None
    started: str | None
    status: str
    running: bool
    config_image: str
    image_id: str
    project: str | None = None
    service: str | None = None
    oneoff: bool = False
    number: str | None = None

    @property
    def is_running(self) -> bool:
        """Running per ``State.Status``: ``State.Running`` is also true while paused."""
        return self.status == RUNNING


@dataclass(frozen=True, order=True)
class Image:
    """One image: its ID and the registry names it is known by."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()


def content_hash(canonical_json: str) -> str:
    """The key a host state is stored under: SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json.encode()).hexdigest()


_CONTAINER_KEY = attrgetter(*(f.name for f in fields(Container)))
_IMAGE_KEY = attrgetter(*(f.name for f in fields(Image)))


@dataclass(frozen=True)
class HostState:
    """Everything observed on one host, sorted so equal states serialize identically."""

    containers: tuple[Container, ...] = ()
    images: tuple[Image, ...] = ()

    def __post_init__(self) -> None:
        # Canonical order, so equal states compare, serialize and hash identically. By key:
        # the same order as the dataclasses' own comparisons, with each key built once
        # rather than two field tuples per comparison.
        object.__setattr__(self, "containers", tuple(sorted(self.containers, key=_CONTAINER_KEY)))
        object.__setattr__(self, "images", tuple(sorted(self.images, key=_IMAGE_KEY)))

    def image(self, image_id: str) -> Image | None:
        """The image with this ID, if it was inspected."""
        return self._index.images.get(image_id)

    def named(self, name: str) -> tuple[Container, ...]:
        """The containers of this name (one on a live engine), in canonical order."""
        return self._index.by_name.get(name, ())

    def of_service(self, service: str) -> tuple[Container, ...]:
        """The containers labelled with this compose service, in canonical order."""
        return self._index.by_service.get(service, ())

    @cached_property
    def _index(self) -> _StateIndex:
        # Built once per state, on first use: every module of the host looks its containers
        # up here, where a scan of them all per module grew with modules × containers.
        by_name: dict[str, list[Container]] = {}
        by_service: dict[str, list[Container]] = {}
        for c in self.containers:
            by_name.setdefault(c.name, []).append(c)
            if c.service is not None:
                by_service.setdefault(c.service, []).append(c)
        images: dict[str, Image] = {}
        for img in self.images:
            images.setdefault(img.id, img)
        return _StateIndex(
            {k: tuple(v) for k, v in by_name.items()},
            {k: tuple(v) for k, v in by_service.items()},
            images,
        )

    def to_json(self) -> str:
        """Canonical JSON: the same state always gives the same text (and hash)."""
        body = {
            # vars(), not asdict(): the fields are flat values, and asdict deep-copies each.
            # Already in canonical order (__post_init__).
            "containers": [vars(c) for c in self.containers],
            "images": [
                {
                    "id": i.id,
                    "repo_tags": sorted(i.repo_tags),
                    "repo_digests": sorted(i.repo_digests),
                }
                for i in self.images
            ],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> HostState:
        """Rebuild a state written by :meth:`to_json`."""
        body: dict[str, Any] = json.loads(text)
        return cls(
            containers=tuple(Container(**c) for c in body["containers"]),
            images=tuple(
                Image(i["id"], tuple(i["repo_tags"]), tuple(i["repo_digests"]))
                for i in body["images"]
            ),
        )


@dataclass(frozen=True)
class _StateIndex:
    """A :class:`HostState`'s containers by name and by compose service, its images by ID."""

    by_name: dict[str, tuple[Container, ...]]
    by_service: dict[str, tuple[Container, ...]]
    images: dict[str, Image]


@dataclass(frozen=True)
class HostResult:
    """The outcome of collecting one host; failures are values, never exceptions."""

    host: str
    status: HostStatus
    reason: str | None = None
    docker_version: str | None = None
    storage_driver: str | None = None
    duration_ms: int = 0
    state: HostState | None = None

    @property
    def ok(self) -> bool:
        """True when the host's state was read."""
        return self.status is HostStatus.OK

    @property
    def reached(self) -> bool:
        """True when the host answered (even if its Docker state could not be read)."""
        return self.status in (HostStatus.OK, HostStatus.ERROR)


@dataclass(frozen=True)
class Collection:
    """One collection run: when it started and what each host gave."""

    taken_at: datetime
    hosts: tuple[HostResult, ...] = field(default=())
