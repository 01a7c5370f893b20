"""Compose stacks under ``compose/*/``: project names and the image each service declares.

A stack folder is read the way ``docker compose`` run inside it reads it (compose v2 where v1
differs; docs/compose.md lists each difference): its ``.env``, the files ``COMPOSE_FILE``
names or else the first compose file and the first override present, ``extends:`` in the same
file or another one, ``include:`` entries, and the project name. Every file comes through
:mod:`platformctl.declared.files`, so nothing outside the platform root is ever read.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformctl.declared.files import MiB, RepoFileError, present, read_repo_file
from platformctl.declared.interpolate import (
    DotEnv,
    EnvFileError,
    Layered,
    UnresolvedVariable,
    interpolate,
    parse_env,
)
from platformctl.declared.model import ComposeImage
from platformctl.declared.reference import InvalidReference, parse_reference
from platformctl.declared.yamlfile import Override, Reset, YamlProblem, load_yaml

if TYPE_CHECKING:
    from platformctl.declared.yamlcache import ParsedYamlCache

# compose v2's search order (compose-go cli.DefaultFileNames / DefaultOverrideFileNames).
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
ENV_FILE = ".env"
MAX_ENV_BYTES = 1 * MiB
# An `extends:` chain deeper than this is refused: a loop is told by its services, this bounds
# the recursion (compose sets no depth; chains this long are not written by hand).
_MAX_EXTENDS_DEPTH = 200
# Files included within included files, at most this deep, and this many in one stack: a
# repository whose files include each other many times over would otherwise be read
# exponentially often.
_MAX_INCLUDE_DEPTH = 16
_MAX_INCLUDED_FILES = 256
# Distinct compose files one stack may read (each parsed once), and COMPOSE_FILE entries.
_MAX_STACK_FILES = 256
_MAX_COMPOSE_FILE_ENTRIES = 64
# The env files one stack's include: entries may have read, in all.
_MAX_ENV_BYTES_READ = 4 * MiB


@dataclass(frozen=True)
class Stack:
    """One compose stack: its (first) file, project name and services, or why it is
    unusable."""

    path: Path
    project: str
    services: dict[str, ComposeImage] = field(default_factory=dict)
    problem: str | None = None
    files: tuple[Path, ...] = ()
    """Every compose file read, in merge order (the first is ``path``)."""
    names: frozenset[str] | None = None
    """The services an unusable stack's files were seen to define; None when they could not
    be read (its modules are those it could be for: docs/design.md, "Declared state")."""
    project_known: bool = True
    """False for an unusable stack whose project name could not be worked out (``project``
    is then its folder's): it may be the stack of any project."""

    def may_define(self, service: str) -> bool:
        """Whether this stack defines ``service``, or, unusable, might."""
        if self.problem is None:
            return service in self.services
        return self.names is None or service in self.names


class _Problem(ValueError):
    """The stack cannot be read as compose would read it; the message says why."""


def normalize_project_name(name: str) -> str:
    """Normalize a project name as compose does: lowercase, keep ``[a-z0-9_-]``, then drop
    leading ``_`` and ``-`` (so the name starts with a letter or digit)."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def find_stacks(root: Path, cache: ParsedYamlCache | None = None) -> list[Stack]:
    """Load every stack under ``root/compose/*/``; a broken stack is a value with a problem.
    ``cache`` spares parsing files read before (:mod:`platformctl.declared.yamlcache`)."""
    compose_dir = root / "compose"
    if not compose_dir.is_dir():
        return []
    stacks = []
    for folder in sorted(p for p in compose_dir.iterdir() if p.is_dir()):
        stack = load_stack_dir(folder, root, cache)
        if stack is not None:
            stacks.append(stack)
    return stacks


def load_stack_dir(folder: Path, root: Path, cache: ParsedYamlCache | None = None) -> Stack | None:
    """Read one stack folder; None when it holds no compose file. Never raises for bad
    content: a stack compose would refuse is returned with ``problem`` set."""
    default_project = normalize_project_name(folder.name)
    first = folder / COMPOSE_FILES[0]
    env: DotEnv | None = None
    try:
        env = _read_env(folder, root)
        files = _compose_files(folder, env)
        if not files:
            return None
        first = files[0]
        reading = _Files(root, cache)
        docs = [reading.mapping(f) for f in files]
    except _Problem as exc:
        # COMPOSE_PROJECT_NAME from a .env that was read names the project still.
        named = _env_project(env)
        return Stack(first, named or default_project, problem=str(exc), project_known=bool(named))
    names = _names(docs)
    try:
        project = _project_name(folder, files, docs, env)
    except _Problem as exc:
        return Stack(
            first,
            default_project,
            problem=str(exc),
            files=tuple(files),
            names=names,
            project_known=False,
        )
    # compose v2 lets compose files refer to the project name it settled on.
    env = DotEnv(
        {**env.known, "COMPOSE_PROJECT_NAME": project},
        {k: v for k, v in env.unresolved.items() if k != "COMPOSE_PROJECT_NAME"},
    )
    try:
        merged = _model(files, docs, first, first.parent, env, reading, ())
    except _Problem as exc:
        return Stack(first, project, problem=str(exc), files=tuple(files), names=names)
    result = {
        name: _service_image(d.file, project, name, _kept(d.spec), d.env)
        for name, d in merged.items()
    }
    return Stack(first, project, result, files=tuple(files))


class _Files:
    """The files of one stack as it is read: each compose file parsed once (``extends:``
    chains and ``COMPOSE_FILE`` entries name the same files over and over: a 20 KB file of
    long chains between two 1 MiB files took a minute), and the ``include:`` entries met so
    far, both bounded."""

    def __init__(self, root: Path, cache: ParsedYamlCache | None) -> None:
        self.root = root
        self._cache = cache
        self._named: dict[Path, dict[str, Any]] = {}
        self._parsed: dict[str, dict[str, Any]] = {}
        self._included = 0
        # Services with their extends: chains merged in, by file, name and variables; the
        # variables of include: entries and the models they make. Variables are told by
        # their contents: entries whose env files give the same ones share what they make.
        self.extended: dict[tuple[object, ...], tuple[dict[str, Any], int]] = {}
        self._envs: dict[tuple[object, ...], DotEnv] = {}
        self._models: dict[tuple[object, ...], dict[str, _Defined]] = {}
        self._contents: dict[int, tuple[DotEnv, tuple[frozenset[Any], frozenset[Any]]]] = {}
        self._env_bytes = 0

    def variables(self, env: DotEnv) -> tuple[frozenset[Any], frozenset[Any]]:
        """What ``env`` holds, as a key (worked out once per object)."""
        known = self._contents.get(id(env))
        if known is not None and known[0] is env:
            return known[1]
        key = (frozenset(env.known.items()), frozenset(env.unresolved.items()))
        self._contents[id(env)] = (env, key)  # the object kept: its id is never reused
        return key

    def env_file(self, path: Path, outer: Mapping[str, str]) -> DotEnv:
        """The env file ``path`` read with ``outer`` to refer to; at most
        :data:`_MAX_ENV_BYTES_READ` of them a stack (a 1 MiB file named in every entry of
        every include: took hours)."""
        data = _env_bytes(self.root, path)
        self._env_bytes += len(data)
        if self._env_bytes > _MAX_ENV_BYTES_READ:
            raise _Problem(
                f"{path}: the stack's env files come to more than "
                f"{_MAX_ENV_BYTES_READ // MiB} MiB read; refused"
            )
        return _parsed_env(path, data, outer)

    def mapping(self, path: Path) -> dict[str, Any]:
        """The compose file ``path``, parsed once per stack (nothing changes the result)."""
        doc = self._named.get(path)
        if doc is not None:
            return doc
        key = os.path.realpath(path)
        doc = self._parsed.get(key)
        if doc is None:
            if len(self._parsed) >= _MAX_STACK_FILES:
                raise _Problem(f"{path}: more than {_MAX_STACK_FILES} compose files in a stack")
            doc = self._parsed[key] = _load_mapping(path, self.root, self._cache)
        self._named[path] = doc
        return doc

    def include_env(self, files: list[Path], outer: DotEnv, required: bool) -> DotEnv:
        """:func:`_include_env`, once per env files and including variables: every entry
        of one ``include:`` that names the same files gets the same variables."""
        key = (tuple(os.path.realpath(f) for f in files), required, self.variables(outer))
        env = self._envs.get(key)
        if env is None:
            env = self._envs[key] = _include_env(files, self, outer, required)
        return env

    def included_model(
        self,
        files: list[Path],
        folder: Path,
        env: DotEnv,
        build: Callable[[list[Path], Path, DotEnv], dict[str, _Defined]],
    ) -> dict[str, _Defined]:
        """The model of an ``include:`` entry, ``build`` once per files, folder and
        variables (nothing else changes it)."""
        files_key = tuple(os.path.realpath(f) for f in files)
        key = (files_key, os.path.realpath(folder), self.variables(env))
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = build(files, folder, env)
        return model

    def include(self, path: Path, count: int) -> None:
        """Count ``count`` more files included by ``path``'s ``include:``."""
        self._included += count
        if self._included > _MAX_INCLUDED_FILES:
            raise _Problem(f"{path}: include: more than {_MAX_INCLUDED_FILES} files included")


@dataclass(frozen=True)
class _Defined:
    """One service as a set of compose files defines it: its keys, and the file and variables
    its ``image`` is read with (an included file has its own, docs/compose.md)."""

    spec: dict[str, Any]
    env: DotEnv
    file: Path


def _model(
    files: list[Path],
    docs: list[dict[str, Any]],
    shown: Path,
    folder: Path,
    env: DotEnv,
    reading: _Files,
    chain: tuple[Path, ...],
) -> dict[str, _Defined]:
    """The services of ``files`` (parsed as ``docs``) merged in order, as compose v2 loads
    them: each file's own services with their ``extends:``, and those its ``include:``
    entries bring; a later file's keys of a service replace the earlier ones. ``shown`` is
    the file a service of these files is reported under, ``folder`` their project folder
    (where an ``include:`` entry's names start), ``chain`` the real paths of the files whose
    ``include:`` led here."""
    merged: dict[str, _Defined] = {}
    for path, doc in zip(files, docs, strict=True):
        # `!reset` on the services, or on one, drops what the files before defined, and
        # `!override` replaces it instead of being merged into it.
        listed = doc.get("services")
        if isinstance(listed, Reset | Override):
            merged.clear()
        listed = _unwrapped(listed)
        if isinstance(listed, dict):
            for name, spec in listed.items():
                if isinstance(spec, Reset | Override):
                    merged.pop(str(name), None)
        services = _services_of(path, doc)
        defined = {
            name: _Defined(_with_extends(name, services, path, env, (), reading)[0], env, shown)
            for name in services
        }
        brought = _included(path, doc, folder, env, reading, chain)
        for name, imported in brought.items():
            if name in defined and not _same_image(defined[name], imported):
                raise _Problem(
                    f"{path}: include: {imported.file} defines service {name!r}, which is "
                    "also defined here (compose refuses the conflict)"
                )
            defined.setdefault(name, imported)
        for name, here in defined.items():
            before = merged.get(name)
            if before is not None:
                # The image is read with the variables, and shown under the file, of the
                # definition that gave it.
                source = here if "image" in here.spec else before
                here = _Defined({**before.spec, **here.spec}, source.env, source.file)
            merged[name] = here
    return merged


def _included(
    path: Path,
    doc: dict[str, Any],
    folder: Path,
    env: DotEnv,
    reading: _Files,
    chain: tuple[Path, ...],
) -> dict[str, _Defined]:
    """The services the ``include:`` entries of the compose file ``path`` bring (compose
    2.20 and later): each entry is its own compose model, its files, folder and env files
    named from ``folder`` (the including model's), its variables its ``.env`` (or its
    ``env_file``) gives under the including model's own, which win."""
    entries = doc.get("include")
    if entries is None or isinstance(entries, Reset):
        return {}
    if not isinstance(entries, list):
        raise _Problem(f"{path}: include must be a list")
    real = Path(os.path.realpath(path))
    if real in chain or len(chain) >= _MAX_INCLUDE_DEPTH:
        names = " -> ".join(p.name for p in (*chain, real))
        raise _Problem(f"{path}: include loop ({names})")

    def build(files: list[Path], directory: Path, variables: DotEnv) -> dict[str, _Defined]:
        docs = [reading.mapping(f) for f in files]
        return _model(files, docs, files[0], directory, variables, reading, (*chain, real))

    found: dict[str, _Defined] = {}
    for entry in entries:
        paths, project_directory, env_files = _include_entry(path, entry, env)
        included = [folder / p for p in paths]
        reading.include(path, len(included))
        for file in included:
            if not present(file):
                raise _Problem(f"{path}: include: {file.name} does not exist ({file})")
        directory = folder / project_directory if project_directory else included[0].parent
        own = [directory / ENV_FILE] if env_files is None else [folder / f for f in env_files]
        inner = reading.include_env(own, env, required=env_files is not None)
        model = reading.included_model(included, directory, inner, build)
        for name, imported in model.items():
            known = found.get(name)
            if known is not None and known is not imported and not _same_image(known, imported):
                raise _Problem(
                    f"{path}: include: service {name!r} is defined by two included files "
                    f"({known.file}, {imported.file}; compose refuses the conflict)"
                )
            found.setdefault(name, imported)
    return found


def _include_entry(
    path: Path, entry: object, env: DotEnv
) -> tuple[list[str], str | None, list[str] | None]:
    """An ``include:`` entry's files, project directory and env files, interpolated as the
    rest of the including file is (the long syntax's other keys are not read)."""

    def strings(value: object, key: str) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values:
            raise _Problem(f"{path}: include: {key} must be a file name or a list of them")
        if not all(isinstance(v, str) and v for v in values):
            raise _Problem(f"{path}: include: {key} must be a file name or a list of them")
        try:
            return [interpolate(v, env) for v in values]
        except UnresolvedVariable as exc:
            raise _Problem(f"{path}: include: {key} unresolved: {exc}") from None

    if isinstance(entry, dict) and "path" in entry:
        directory, env_file = entry.get("project_directory"), entry.get("env_file")
        paths = strings(entry["path"], "path")
        project_directory = None if directory is None else strings(directory, "directory")[0]
        env_files = None if env_file is None else strings(env_file, "env_file")
    elif isinstance(entry, str):
        paths, project_directory, env_files = strings(entry, "path"), None, None
    else:
        raise _Problem(f"{path}: an include entry is a file name or a mapping with path:")
    for name in paths:
        # compose fetches these (a git repository, an OCI artifact); platformctl reads only
        # the repository's own files.
        if "://" in name or name.startswith("git@"):
            raise _Problem(f"{path}: include: {name} is a remote resource, not read here")
    return paths, project_directory, env_files


def _same_image(one: _Defined, other: _Defined) -> bool:
    """Whether two definitions of a service declare the same image (built or not), each read
    with its own variables. compose refuses two definitions that differ in anything: a stack
    it would not deploy. Only the image is read here, so only a different image is refused;
    comparing the whole definitions would also walk what aliases expand (exponential)."""
    return _image_of(one) == _image_of(other)


def _image_of(defined: _Defined) -> tuple[str | None, bool]:
    spec = _kept(defined.spec)
    image = spec.get("image")
    if isinstance(image, str):
        with contextlib.suppress(UnresolvedVariable):  # then compared as written
            image = interpolate(image, defined.env)
    elif image is not None:  # no image compose takes; never walked (aliases, loops)
        image = f"a {type(image).__name__}"
    return image, "build" in spec


def _include_env(files: list[Path], reading: _Files, outer: DotEnv, required: bool) -> DotEnv:
    """The variables an included model is read with: its env files' (the default ``.env``
    only when present), each read with the including model's variables, then the files'
    before it, to refer to (as compose-go's GetEnvFromFile looks them up), under the
    including model's own, which win."""
    known: dict[str, str] = {}
    unresolved: dict[str, str] = {}
    if len(files) > _MAX_COMPOSE_FILE_ENTRIES:
        raise _Problem(f"include: env_file names more than {_MAX_COMPOSE_FILE_ENTRIES} files")
    for file in files:
        if not present(file):
            if required:
                raise _Problem(f"include: env_file {file} does not exist")
            continue
        read = reading.env_file(file, Layered(outer, DotEnv(known, unresolved)))
        known.update(read.known)
        unresolved.update(read.unresolved)
        for key in read.known:
            unresolved.pop(key, None)
    for key in (*outer.known, *outer.unresolved):
        known.pop(key, None)
        unresolved.pop(key, None)
    return DotEnv({**known, **outer.known}, {**unresolved, **outer.unresolved})


def _env_project(env: DotEnv | None) -> str | None:
    """The project ``env``'s ``COMPOSE_PROJECT_NAME`` names, when it is set and known."""
    if env is None:
        return None
    try:
        value = env.get("COMPOSE_PROJECT_NAME")
    except UnresolvedVariable:
        return None
    project = normalize_project_name(value) if value else ""
    return project or None


def _read_env(folder: Path, root: Path) -> DotEnv:
    path = folder / ENV_FILE
    if not present(path):
        return DotEnv()
    return _parsed_env(path, _env_bytes(root, path))


def _env_bytes(root: Path, path: Path) -> bytes:
    """The env file ``path``, read as every repository file is, within its cap."""
    try:
        return read_repo_file(root, path, MAX_ENV_BYTES)
    except RepoFileError as exc:
        raise _Problem(str(exc)) from None


def _parsed_env(path: Path, data: bytes, outer: Mapping[str, str] | None = None) -> DotEnv:
    try:
        return parse_env(data.decode("utf-8", errors="replace"), outer)
    except EnvFileError as exc:
        raise _Problem(f"{path}: {exc} (docker compose refuses this file)") from None


def _compose_files(folder: Path, env: DotEnv) -> list[Path]:
    """``COMPOSE_FILE`` from ``.env`` (split on ``COMPOSE_PATH_SEPARATOR``, default ``:``),
    else the first compose file present and the first override present."""
    if "COMPOSE_FILE" in env:
        try:
            listed = env["COMPOSE_FILE"]
            separator = env.get("COMPOSE_PATH_SEPARATOR") or ":"
        except UnresolvedVariable as exc:
            raise _Problem(f"{folder / ENV_FILE}: {exc}") from None
        if listed:
            entries = listed.split(separator)
            if len(entries) > _MAX_COMPOSE_FILE_ENTRIES:
                raise _Problem(
                    f"{folder / ENV_FILE}: COMPOSE_FILE names more than "
                    f"{_MAX_COMPOSE_FILE_ENTRIES} files"
                )
            if "" in entries:
                raise _Problem(f"{folder / ENV_FILE}: COMPOSE_FILE={listed!r} has an empty entry")
            files = []
            for entry in entries:
                path = folder / entry
                if not present(path):
                    raise _Problem(
                        f"{folder / ENV_FILE}: COMPOSE_FILE names {entry}, which does not exist"
                    )
                files.append(path)
            return files
    main = next((folder / n for n in COMPOSE_FILES if present(folder / n)), None)
    if main is None:
        return []
    override = next((folder / n for n in OVERRIDE_FILES if present(folder / n)), None)
    return [main] if override is None else [main, override]


def _load_mapping(path: Path, root: Path, cache: ParsedYamlCache | None) -> dict[str, Any]:
    try:
        doc = _untagged(load_yaml(path, root, cache, compose=True))
    except YamlProblem as exc:
        raise _Problem(str(exc)) from None
    if not isinstance(doc, dict):
        raise _Problem(f"{path}: a compose file must be a mapping")
    return doc


def _untagged(doc: Any) -> Any:
    """``doc`` with compose's ``!override`` taken off where this reader looks: a service's
    keys and the top-level keys, which are merged by replacing anyway. On the services, or
    on one service, it stays (an :class:`Override` of the mapping): there it replaces what
    the files before gave instead of being merged into it (:func:`_model`). ``!reset`` stays
    as the value, to drop what the files before gave (the merges below). Deeper values are
    left as they are, unwalked: nothing reads them, and a document may nest a thousand
    levels."""
    doc = _unwrapped(doc)
    if not isinstance(doc, dict):
        return doc
    top = {key: _unwrapped(value) for key, value in doc.items() if key != "services"}
    if "services" in doc:
        services = doc["services"]
        replaced = isinstance(services, Override)
        services = _unwrapped(services)
        if isinstance(services, dict):
            services = {name: _service_untagged(spec) for name, spec in services.items()}
        top["services"] = Override(services) if replaced else services
    return top


def _service_untagged(spec: Any) -> Any:
    replaced = isinstance(spec, Override)
    spec = _unwrapped(spec)
    if isinstance(spec, dict):
        spec = {key: _unwrapped(value) for key, value in spec.items()}
    return Override(spec) if replaced and isinstance(spec, dict) else spec


def _unwrapped(value: Any) -> Any:
    """The value an ``!override`` tags (itself otherwise)."""
    while isinstance(value, Override):
        value = value.value
    return value


def _kept(spec: dict[str, Any]) -> dict[str, Any]:
    """A merged service's keys, without those a ``!reset`` dropped."""
    return {key: value for key, value in spec.items() if not isinstance(value, Reset)}


def _project_name(folder: Path, files: list[Path], docs: list[dict[str, Any]], env: DotEnv) -> str:
    """``COMPOSE_PROJECT_NAME`` from ``.env``, else the last top-level ``name:``, else the
    folder name; each normalized as compose does."""
    try:
        from_env = env.get("COMPOSE_PROJECT_NAME")
    except UnresolvedVariable as exc:
        raise _Problem(f"{folder / ENV_FILE}: {exc}") from None
    if from_env:
        project = normalize_project_name(from_env)
        if not project:
            raise _Problem(
                f"{folder / ENV_FILE}: COMPOSE_PROJECT_NAME={from_env!r} has no character a "
                "compose project name may hold (a-z 0-9 _ -)"
            )
        return project
    named = None
    for path, doc in zip(files, docs, strict=True):
        name = doc.get("name")
        if isinstance(name, Reset):
            named = None
            continue
        if name is None or name == "":
            continue
        if not isinstance(name, str):
            raise _Problem(f"{path}: name must be a string")
        try:
            named = normalize_project_name(interpolate(name, env))
        except UnresolvedVariable as exc:
            raise _Problem(f"{path}: name {name!r} unresolved: {exc}") from None
    if named:
        return named
    project = normalize_project_name(folder.name)
    if not project:
        raise _Problem(
            f"{folder}: the folder name gives an empty compose project name; "
            "set name: or COMPOSE_PROJECT_NAME"
        )
    return project


def _names(docs: list[dict[str, Any]]) -> frozenset[str] | None:
    """The service names the files define; None when a file's ``services`` is no mapping or
    it includes others (whose services are known only once they are read)."""
    names: set[str] = set()
    for doc in docs:
        if doc.get("include") is not None and not isinstance(doc.get("include"), Reset):
            return None
        services = _unwrapped(doc.get("services"))
        if services is None:
            continue
        if not isinstance(services, dict):
            return None
        names.update(str(name) for name in services)
    return frozenset(names)


def _services_of(path: Path, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = _unwrapped(doc.get("services"))
    if services is None or isinstance(services, Reset):
        return {}
    if not isinstance(services, dict):
        raise _Problem(f"{path}: 'services' must be a mapping")
    return {
        str(name): (spec if isinstance(spec, dict) else {})
        for name, spec in ((n, _unwrapped(s)) for n, s in services.items())
        if not isinstance(spec, Reset)
    }


def _with_extends(
    name: str,
    services: dict[str, dict[str, Any]],
    path: Path,
    env: DotEnv,
    chain: tuple[tuple[Path, str], ...],
    reading: _Files,
) -> tuple[dict[str, Any], int]:
    """Service ``name`` of the file ``path`` with its ``extends:`` chain merged in: keys of
    the extending service win over the base's, as compose merges ``image`` and ``build``.
    Once per file, service and variables: a chain is met again by every service and every
    mention of a file that extends into it. With it, how many services its chain goes down,
    kept with it, so the bound on the depth counts the same from wherever the chain is first
    met."""
    key = (path, name, reading.variables(env))
    known = reading.extended.get(key)
    if known is None:
        known = reading.extended[key] = _extending(name, services, path, env, chain, reading)
    if len(chain) + known[1] > _MAX_EXTENDS_DEPTH:
        raise _Problem(f"{path}: services.{name}: extends chain deeper than {_MAX_EXTENDS_DEPTH}")
    return known


def _extending(
    name: str,
    services: dict[str, dict[str, Any]],
    path: Path,
    env: DotEnv,
    chain: tuple[tuple[Path, str], ...],
    reading: _Files,
) -> tuple[dict[str, Any], int]:
    if (path, name) in chain:
        loop = " -> ".join(f"{p.name}:{s}" for p, s in (*chain, (path, name)))
        raise _Problem(f"{path}: extends loop ({loop})")
    if len(chain) > _MAX_EXTENDS_DEPTH:
        raise _Problem(f"{path}: services.{name}: extends chain deeper than {_MAX_EXTENDS_DEPTH}")
    spec = services[name]
    extends = spec.get("extends")
    if extends is None or isinstance(extends, Reset):
        return spec, 0
    base_file: str | None = None
    if isinstance(extends, str):
        base_name = extends
    elif isinstance(extends, dict) and isinstance(extends.get("service"), str):
        base_name = extends["service"]
        if extends.get("file") is not None:
            if not isinstance(extends["file"], str):
                raise _Problem(f"{path}: services.{name}.extends.file must be a string")
            base_file = extends["file"]
    else:
        raise _Problem(f"{path}: services.{name}.extends needs a service name")
    try:
        base_name = interpolate(base_name, env)
        base_file = interpolate(base_file, env) if base_file is not None else None
    except UnresolvedVariable as exc:
        raise _Problem(f"{path}: services.{name}.extends unresolved: {exc}") from None
    chain = (*chain, (path, name))
    if base_file is None:
        base_path, base_services = path, services
    else:
        base_path = path.parent / base_file
        if not present(base_path):
            raise _Problem(f"{path}: services.{name}.extends.file {base_file} does not exist")
        base_services = _services_of(base_path, reading.mapping(base_path))
    if base_name not in base_services:
        raise _Problem(
            f"{path}: services.{name} extends service {base_name!r}, "
            f"which {base_path.name} does not define"
        )
    base, depth = _with_extends(base_name, base_services, base_path, env, chain, reading)
    own = {k: v for k, v in spec.items() if k != "extends"}
    return {**{k: v for k, v in base.items() if k != "extends"}, **own}, depth + 1


def _service_image(
    path: Path, project: str, service: str, spec: dict[str, Any], env: DotEnv
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
