"""Module manifests under ``modules/*/module.yaml`` and the declared state built from them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformctl.alias import ALIAS_RE
from platformctl.declared.acceptance import AcceptanceProblem, parse_acceptance
from platformctl.declared.compose import Stack, find_stacks, normalize_project_name
from platformctl.declared.files import present
from platformctl.declared.model import (
    CheckedModule,
    DeclaredState,
    ExternalModule,
    InvalidModule,
    Module,
    Orchestrator,
)
from platformctl.declared.reference import InvalidReference, parse_reference
from platformctl.declared.yamlfile import YamlProblem, iter_yaml, load_yaml
from platformctl.errors import DeclaredStateError, elided
from platformctl.paths import user_path

if TYPE_CHECKING:
    from platformctl.declared.yamlcache import ParsedYamlCache

MANIFEST_NAMES = ("module.yaml", "module.yml")


def find_root(explicit: str | None = None, start: Path | None = None) -> Path:
    """The platform root: ``explicit`` (``--root``/``PLATFORMCTL_ROOT``) or the nearest folder
    at or above ``start`` that holds a ``modules/`` folder owned by the current user.

    A ``modules/`` folder owned by someone else (say in a shared ``/tmp``) is passed over: the
    repository decides which files are read and which hosts are contacted, so one found by
    walking up must be the user's own. ``--root`` is the user's explicit choice and is taken
    as given.
    """
    if explicit:
        root = user_path(explicit, "--root")
        try:
            if not root.is_dir():
                raise DeclaredStateError(f"platform root {root} is not a folder (check --root)")
            return root.resolve()
        except OSError as exc:  # a name too long, a loop of symlinks, …
            raise DeclaredStateError(
                f"platform root {elided(explicit)}: {exc.strerror or exc} (check --root)"
            ) from None
    try:
        here = (start or Path.cwd()).resolve()
    except FileNotFoundError:  # the working folder was removed under the shell
        raise DeclaredStateError(
            "the working folder no longer exists; cd to the platform repository or pass --root"
        ) from None
    passed_over: list[str] = []
    for folder in (here, *here.parents):
        modules = folder / "modules"
        if not modules.is_dir():
            continue
        owner = modules.stat().st_uid
        if owner != os.getuid():
            passed_over.append(f"{modules} (owned by uid {owner})")
            continue
        return folder
    hint = f"; passed over {', '.join(passed_over)}, not yours" if passed_over else ""
    raise DeclaredStateError(
        f"no modules/ folder of yours at or above {here}{hint}; "
        "run inside a platform repository or pass --root"
    )


def load_declared(
    root: Path,
    cache: ParsedYamlCache | None = None,
    on_module: Callable[[Module], object] | None = None,
) -> DeclaredState:
    """Read every manifest and compose stack under ``root``. Only reads the repository;
    ``cache`` spares parsing files read before (:mod:`platformctl.declared.yamlcache`).
    ``on_module`` is given each module as soon as it is final (its batch of files read), in
    folder order: a run starts collecting its host while the rest are read (docs/design.md,
    "Start-up")."""
    modules_dir = root / "modules"
    if not modules_dir.is_dir():
        raise DeclaredStateError(f"no modules/ folder under {root} (check --root)")
    paths: list[Path] = []
    folder_of: list[str] = []
    # Names, not paths, are sorted and the entries' types come with the listing: this runs
    # once per module folder (bench/README.md, 500 hosts).
    with os.scandir(modules_dir) as entries:
        folders = sorted(entry.name for entry in entries if _is_folder(entry))
    for folder in folders:
        for name in MANIFEST_NAMES:
            # present(), not is_file(): a manifest that is a FIFO or a dangling symlink is
            # reported invalid with the reason, not silently skipped.
            candidate = os.path.join(modules_dir, folder, name)
            if present(candidate):
                paths.append(Path(candidate))
                folder_of.append(folder)
                break
    if not paths:
        raise DeclaredStateError(
            f"no module manifests under {modules_dir} (expected modules/<name>/module.yaml)"
        )
    stacks = find_stacks(root, cache)
    modules: list[Module] = []
    by_name: dict[str, Module] = {}
    # iter_yaml reads the files a batch at a time (bench/README.md, "Where platformctl's CPU
    # goes"): each module is handed over once its batch is read.
    documents = iter_yaml(paths, root, cache)
    for path, folder, doc in zip(paths, folder_of, documents, strict=True):
        module = _link_compose(_from_document(path, doc, folder), stacks)
        first = by_name.get(module.name)
        if first is None:
            by_name[module.name] = module
        else:
            problem = f"module name {module.name!r} is also used by {first.path}"
            module = _invalid(module.path, module.name, problem)
        modules.append(module)
        if on_module is not None:
            on_module(module)
    # Stable: modules of one name stay in folder order, the first valid, the others not.
    modules.sort(key=lambda m: m.name)
    return DeclaredState(modules=tuple(modules))


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """A folder, or a symlink to one; a link that loops or leads nowhere is passed over, as
    ``Path.is_dir`` passes it over, not an error for the whole repository."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def load_manifest(
    path: Path, cache: ParsedYamlCache | None = None, root: Path | None = None
) -> Module:
    """Parse one manifest (``ROOT/modules/<name>/module.yaml``) into a :class:`Module`; a bad
    manifest gives one with a problem. The file may resolve only to somewhere under ROOT
    (``root``, when the caller has it: each ``Path.parent`` is a new path object, and this
    runs for every module)."""
    try:
        doc = load_yaml(path, path.parent.parent.parent if root is None else root, cache)
    except YamlProblem as exc:
        doc = exc
    return _from_document(path, doc)


def _from_document(path: Path, doc: Any, folder_name: str | None = None) -> Module:
    """The module the manifest at ``path`` declares, from its document (or the
    :class:`YamlProblem` reading it gave). ``folder_name`` is the name of the folder holding
    it, when the caller has it (``path.parent`` is a new path object, for every module)."""
    if folder_name is None:
        folder_name = path.parent.name
    if isinstance(doc, YamlProblem):
        return _invalid(path, folder_name, str(doc))
    if not isinstance(doc, dict):
        return _invalid(path, folder_name, f"{path}: a manifest must be a mapping")

    name = folder_name
    metadata = doc.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return _invalid(path, name, f"{path}: metadata must be a mapping")
    if isinstance(metadata, dict) and metadata.get("name") is not None:
        if not isinstance(metadata["name"], str) or not metadata["name"].strip():
            return _invalid(path, name, f"{path}: metadata.name must be a non-empty string")
        name = metadata["name"].strip()

    spec = doc.get("spec")
    runtime = spec.get("runtime") if isinstance(spec, dict) else None
    if not isinstance(runtime, dict):
        return _invalid(path, name, f"{path}: spec.runtime is missing or not a mapping")

    try:
        orchestrator_raw = _required(path, runtime, "orchestrator")
        orchestrator = _ORCHESTRATORS.get(orchestrator_raw)
        if orchestrator is None:
            choices = ", ".join(o.value for o in Orchestrator)
            raise _Missing(
                f"{path}: unknown orchestrator {orchestrator_raw!r} (expected one of {choices})"
            )
        if orchestrator is Orchestrator.EXTERNAL:
            return ExternalModule(name=name, path=path, host=_optional(path, runtime, "host"))
        host = _required(path, runtime, "host")
        if not ALIAS_RE.match(host):
            raise _Missing(
                f"{path}: spec.runtime.host {host!r} is not an ssh alias or host name "
                "(letters, digits, '.', '-', '_', ':' only)"
            )
        compose = orchestrator is Orchestrator.DOCKER_COMPOSE
        service = (_required if compose else _optional)(path, runtime, "compose_service")
        project = _optional(path, runtime, "compose_project")
        if compose:  # a docker module's compose_project is a key nothing reads
            project = _project(path, project)
        container = (_optional if compose else _required)(path, runtime, "container")
        raw = _image_observed(path, runtime.get("image_observed"))
        accepted = parse_acceptance(
            f"{path}: spec.runtime.drift_accepted", runtime.get("drift_accepted")
        )
    except (_Missing, AcceptanceProblem) as exc:
        return _invalid(path, name, str(exc))
    try:
        declared = parse_reference(raw, default_tag=False)
    except InvalidReference as exc:
        return _invalid(path, name, f"{path}: spec.runtime.image_observed: {exc}")
    return CheckedModule(
        name=name,
        path=path,
        host=host,
        orchestrator=orchestrator,
        declared_raw=raw,
        declared=declared,
        compose_service=service,
        compose_project=project,
        container=container,
        accepted=accepted,
    )


_ORCHESTRATORS = {o.value: o for o in Orchestrator}


def _optional(path: Path, runtime: dict[str, Any], key: str) -> str | None:
    """``spec.runtime.<key>`` as text without surrounding blanks; None when absent or blank."""
    value = runtime.get(key)
    if value is None:
        return None
    # type() first: nearly every value is a plain string (bool is an int, and refused).
    if type(value) is not str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _Missing(
                f"{path}: spec.runtime.{key} must be a string, got {type(value).__name__}"
            )
        value = str(value)
    return value.strip() or None


def _required(path: Path, runtime: dict[str, Any], key: str) -> str:
    """``spec.runtime.<key>`` as :func:`_optional` gives it; absent or blank is a problem."""
    value = _optional(path, runtime, key)
    if value is None:
        empty = key in runtime
        raise _Missing(f"{path}: spec.runtime.{key} is {'empty' if empty else 'required'}")
    return value


def _project(path: Path, name: str | None) -> str | None:
    """``compose_project`` as compose names the project: a stack's name, and the label on its
    containers, are normalized (``Apps.Prod`` is ``appsprod``), so the manifest's is too."""
    if name is None:
        return None
    project = normalize_project_name(name)
    if not project:
        raise _Missing(
            f"{path}: spec.runtime.compose_project {name!r} is no compose project name "
            "(letters, digits, '_' and '-')"
        )
    return project


class _Missing(ValueError):
    """A required manifest field is absent or of the wrong type."""


def _image_observed(path: Path, value: Any) -> str:
    """Accept a reference string or ``{image: ref, digest: sha256:…, observed_at: …}``."""
    where = f"{path}: spec.runtime.image_observed"
    if value is None:
        raise _Missing(f"{where} is required")
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise _Missing(f"{where} must be a string or a mapping, got {type(value).__name__}")
    image = value.get("image")
    digest = value.get("digest")
    if not isinstance(image, str) or not image.strip():
        raise _Missing(f"{where}.image is required and must be a string")
    if digest is None:
        return image
    if not isinstance(digest, str):
        raise _Missing(f"{where}.digest must be a string like sha256:<64 hex>")
    if "@" in image:
        existing = image.split("@", 1)[1]
        if existing != digest:
            raise _Missing(f"{where}: image digest {existing} disagrees with digest {digest}")
        return image
    return f"{image}@{digest}"


def _invalid(path: Path, name: str, problem: str) -> InvalidModule:
    return InvalidModule(name=name, path=path, problem=problem)


def _link_compose(module: Module, stacks: list[Stack]) -> Module:
    """Attach the compose stack's image for a docker-compose module (docs/design.md,
    "Declared state")."""
    if (
        not isinstance(module, CheckedModule)
        or module.orchestrator is not Orchestrator.DOCKER_COMPOSE
        or module.compose_service is None
    ):
        return module
    service = module.compose_service
    # An unusable stack counts only for the services it may define: one whose files named
    # their services and not this one is no more this module's than a usable one would be.
    mine = [s for s in stacks if s.may_define(service)]
    if module.compose_project:
        # A stack whose project name could not be worked out may be the named project's,
        # unless a usable stack is.
        project = module.compose_project
        usable = any(s.project == project and s.problem is None for s in stacks)
        mine = [s for s in mine if s.project == project or not (s.project_known or usable)]
    candidates = [s for s in mine if s.problem is None]
    broken = [s for s in mine if s.problem]
    if module.compose_project:  # the named project's own broken stack, when there is one
        broken = [s for s in broken if s.project_known] or broken
    if len(candidates) > 1:
        where = ", ".join(str(os.path.relpath(s.path, module.path.parent)) for s in candidates)
        return _invalid(
            module.path,
            module.name,
            f"{module.path}: compose service {service!r} is defined by several stacks "
            f"({where}); set spec.runtime.compose_project",
        )
    if not candidates and broken:
        return _invalid(module.path, module.name, f"compose stack unusable: {broken[0].problem}")
    if not candidates:
        return module
    stack = candidates[0]
    return replace(
        module,
        compose_project=module.compose_project or stack.project,
        compose=stack.services[service],
    )
