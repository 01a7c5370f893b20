"""Compose stacks under ``compose/*/``: project names and the image each service declares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformctl.declared.interpolate import UnresolvedVariable, interpolate, read_env_file
from platformctl.declared.model import ComposeImage
from platformctl.declared.reference import InvalidReference, parse_reference
from platformctl.declared.yamlfile import YamlProblem, load_yaml

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = {
    "compose.yaml": ("compose.override.yaml", "compose.override.yml"),
    "compose.yml": ("compose.override.yml", "compose.override.yaml"),
    "docker-compose.yaml": ("docker-compose.override.yaml", "docker-compose.override.yml"),
    "docker-compose.yml": ("docker-compose.override.yml", "docker-compose.override.yaml"),
}


@dataclass(frozen=True)
class Stack:
    """One compose stack: its file, project name and services (or why it is unusable)."""

    path: Path
    project: str
    services: dict[str, ComposeImage] = field(default_factory=dict)
    problem: str | None = None


def normalize_project_name(name: str) -> str:
    """Normalize a folder name as compose does: lowercase, keep ``[a-z0-9_-]``, strip ``_-``."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def find_stacks(root: Path) -> list[Stack]:
    """Load every stack under ``root/compose/*/``; a broken stack is a value with a problem."""
    compose_dir = root / "compose"
    if not compose_dir.is_dir():
        return []
    stacks = []
    for folder in sorted(p for p in compose_dir.iterdir() if p.is_dir()):
        for fname in COMPOSE_FILES:
            if (folder / fname).is_file():
                stacks.append(load_stack(folder / fname))
                break
    return stacks


def load_stack(path: Path) -> Stack:
    """Read one compose file, its override and ``.env``; never raises for bad content."""
    folder = path.parent
    env: dict[str, str] = {}
    env_file = folder / ".env"
    if env_file.is_file():
        try:
            env = read_env_file(env_file)
        except OSError as exc:
            return Stack(path, normalize_project_name(folder.name), problem=f"{env_file}: {exc}")
    default_project = normalize_project_name(folder.name)
    try:
        doc = load_yaml(path)
    except YamlProblem as exc:
        return Stack(path, env.get("COMPOSE_PROJECT_NAME") or default_project, problem=str(exc))
    if not isinstance(doc, dict):
        return Stack(path, default_project, problem=f"{path}: a compose file must be a mapping")

    project = env.get("COMPOSE_PROJECT_NAME") or _project_from_doc(doc, env) or default_project
    services = doc.get("services")
    if services is None:
        services = {}
    if not isinstance(services, dict):
        return Stack(path, project, problem=f"{path}: 'services' must be a mapping")
    images: dict[str, Any] = {
        str(name): (spec if isinstance(spec, dict) else {}) for name, spec in services.items()
    }

    for override_name in OVERRIDE_FILES[path.name]:
        override = folder / override_name
        if not override.is_file():
            continue
        try:
            odoc = load_yaml(override)
        except YamlProblem as exc:
            return Stack(path, project, problem=str(exc))
        osvcs = odoc.get("services") if isinstance(odoc, dict) else None
        if isinstance(osvcs, dict):
            for name, spec in osvcs.items():
                merged = dict(images.get(str(name), {}))
                if isinstance(spec, dict):
                    merged.update(spec)
                images[str(name)] = merged
        break

    result = {name: _service_image(path, project, name, spec, env) for name, spec in images.items()}
    return Stack(path, project, result)


def _project_from_doc(doc: dict[str, Any], env: dict[str, str]) -> str | None:
    name = doc.get("name")
    if not isinstance(name, str):
        return None
    try:
        return interpolate(name, env) or None
    except UnresolvedVariable:
        return None


def _service_image(
    path: Path, project: str, service: str, spec: dict[str, Any], env: dict[str, str]
) -> ComposeImage:
    def without_image(reason: str, raw: str | None = None, built: bool = False) -> ComposeImage:
        return ComposeImage(
            path, project, service, raw, None, resolved=built, build_only=built, reason=reason
        )

    raw = spec.get("image")
    if raw is None:
        if "build" in spec:
            return without_image(
                "built from source (build: without image:); no registry digest to compare",
                built=True,
            )
        return without_image("the service declares no image")
    if not isinstance(raw, str):
        return without_image(f"image must be a string, got {type(raw).__name__}")
    try:
        value = interpolate(raw, env)
    except UnresolvedVariable as exc:
        return without_image(f"image {raw!r} unresolved: {exc}")
    try:
        ref = parse_reference(value)
    except InvalidReference as exc:
        return without_image(str(exc), raw=value)
    return ComposeImage(path, project, service, value, ref, resolved=True)
