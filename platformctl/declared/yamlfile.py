"""Reading one YAML file into plain data, with a one-line problem instead of a traceback."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformctl.declared.files import MiB, RepoFileError, read_repo_file

if TYPE_CHECKING:
    from platformctl.declared.yamlcache import ParsedYamlCache

MAX_FILE_BYTES = 4 * MiB
# Files read and then looked up in the cache together (see iter_yaml).
_FIRST_BATCH = 8
_BATCH = 64
_BATCH_BYTES = MiB


class YamlProblem(ValueError):
    """A file that is not readable YAML; the message names the file and line."""


@dataclass(frozen=True)
class Reset:
    """compose's ``!reset`` tag: the value the files before gave this key is dropped."""


@dataclass(frozen=True)
class Override:
    """compose's ``!override`` tag: ``value`` replaces what the files before gave, unmerged."""

    value: Any


def load_yaml(
    path: Path, root: Path, cache: ParsedYamlCache | None = None, *, compose: bool = False
) -> Any:
    """Parse ``path`` (a file inside ``root``) with the safe loader; raise
    :class:`YamlProblem` saying where and what. With ``cache``, bytes parsed before are not
    parsed again. ``compose`` also reads compose's merge tags (:class:`Reset`,
    :class:`Override`; such documents are never cached, being more than plain data)."""
    document = next(iter_yaml((path,), root, cache, compose=compose))
    if isinstance(document, YamlProblem):
        raise document from None
    return document


def iter_yaml(
    paths: Iterable[Path],
    root: Path,
    cache: ParsedYamlCache | None = None,
    *,
    compose: bool = False,
) -> Iterator[Any]:
    """What :func:`load_yaml` gives for each of ``paths``, in order, with a
    :class:`YamlProblem` in the place of each file it would raise for.

    The files are read a batch at a time and each batch is looked up in the cache in one
    query: a query per file, between the system calls that read the files, cost more than
    the reads (bench/README.md, "Where platformctl's CPU goes"). The first batch is small, so
    a run's first hosts start at once, and a batch also ends as soon as it holds
    :data:`_BATCH_BYTES` or more, so the bytes held stay under that plus one file.
    """
    batch: list[tuple[Path, bytes | YamlProblem]] = []
    size = 0
    limit = _FIRST_BATCH
    for path in paths:
        try:
            data = read_repo_file(root, path, MAX_FILE_BYTES)
        except RepoFileError as exc:
            batch.append((path, YamlProblem(str(exc))))
        else:
            batch.append((path, data))
            size += len(data)
        if len(batch) >= limit or size >= _BATCH_BYTES:
            yield from _documents(batch, cache, compose)
            batch, size, limit = [], 0, _BATCH
    yield from _documents(batch, cache, compose)


def _documents(
    batch: list[tuple[Path, bytes | YamlProblem]], cache: ParsedYamlCache | None, compose: bool
) -> Iterator[Any]:
    """The document (or problem) of each file of ``batch``, from the cache where it has them."""
    if cache is None:
        for path, data in batch:
            yield data if isinstance(data, YamlProblem) else _parsed(path, data, compose)
        return
    from platformctl.declared.yamlcache import MISSING

    cached = iter(cache.get_many([data for _, data in batch if isinstance(data, bytes)]))
    kept: set[bytes] = set()
    for path, data in batch:
        if isinstance(data, YamlProblem):
            yield data
            continue
        document = next(cached)
        if document is MISSING and data in kept:
            # The same bytes as a file parsed a moment ago in this batch, whose document the
            # cache kept (and answers without a query).
            document = cache.get(data)
        if document is MISSING:
            document = _parsed(path, data, compose)
            if not isinstance(document, YamlProblem) and cache.add(data, document):
                kept.add(data)
        yield document


def _parsed(path: Path, data: bytes, compose: bool) -> Any:
    """The document ``data`` parses to, or the problem, as a new exception that holds no
    traceback: a batch keeps its problems until it is handed over."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return YamlProblem(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8")
    try:
        return _parse(path, text, compose)
    except YamlProblem as exc:
        return YamlProblem(str(exc))


def _parse(path: Path, text: str, compose: bool) -> Any:
    # Imported here: a run whose files are all in the cache never needs PyYAML (its import
    # compiles a large regular expression; docs/design.md, "Start-up").
    import yaml

    loader = _loader(compose)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        # TypeError: a mapping key that cannot be one (`? !override {a: 1}`), which PyYAML's
        # own check for unhashable keys lets through.
        raise YamlProblem(invalid_yaml(path, exc)) from None


def invalid_yaml(path: Path, exc: Exception) -> str:
    """The one line that says why a file is not valid YAML, with the line when it is known."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = exc.problem or exc.context or "invalid YAML"
        return f"{where}: invalid YAML: {what}"
    return f"{path}: invalid YAML: {str(exc).splitlines()[0][:200]}"


def composed(text: str) -> Any:
    """The node graph of a manifest's text, read by the loader that reads manifests (libyaml's,
    when PyYAML has it), so that what one accepts the other does: the pure-Python parser
    refuses a tab before a comment that libyaml reads. Raises PyYAML's errors."""
    import yaml

    return yaml.compose(text, Loader=_loader(False))


def loaded(text: str) -> Any:
    """A manifest's text as the manifest reader loads it (a key written twice refused)."""
    import yaml

    return yaml.load(text, Loader=_loader(False))  # noqa: S506 - a safe loader


# Changed whenever what the loaders accept changes: the parsed YAML cache is keyed on it too,
# so a document parsed before is not served as if this loader had read it (2: duplicate keys
# refused; 3 and 4: how two keys are told to be the same).
LOADER_REVISION = 4


@functools.cache
def _loader(compose: bool) -> type:
    """The safe loader (plain data only), on libyaml's parser when PyYAML was built with it
    (the wheels are: about nine times faster than the pure-Python one, which matters at
    hundreds of manifests, bench/README.md). A key written twice in a mapping is refused:
    compose v2 refuses it, and a reader of a manifest sees the first where PyYAML keeps the
    last (``until: 2020-01-01`` above ``until: 2099-12-31``). ``compose`` also reads compose's
    ``!reset`` and ``!override`` (compose 2.24 and later, in override files); any other tag
    is still refused."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    merge = "tag:yaml.org,2002:merge"

    class Loader(base):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # A key written twice, as compose's yaml.v3 tells it (by its text), or two keys
            # this YAML 1.1 reader makes one (`on` and `yes` are both true here, where compose
            # reads two keys): either way one would silently replace the other.
            written: set[str] = set()
            read: dict[Any, str] = {}
            for key_node, _ in node.value:
                if key_node.tag == merge or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                problem = None
                if key_node.value in written:
                    problem = f"found duplicate key {key_node.value!r}"
                elif key in read:
                    first = read[key]
                    problem = f"keys {first!r} and {key_node.value!r} read as the same key"
                if problem is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        problem,
                        key_node.start_mark,
                    )
                written.add(key_node.value)
                read[key] = key_node.value
            return super().construct_mapping(node, deep)

    if compose:

        def reset(loader: Any, node: Any) -> Reset:
            return Reset()

        def override(loader: Any, node: Any) -> Override:
            if isinstance(node, yaml.MappingNode):
                return Override(loader.construct_mapping(node, deep=True))
            if isinstance(node, yaml.SequenceNode):
                return Override(loader.construct_sequence(node, deep=True))
            return Override(loader.construct_scalar(node))

        Loader.add_constructor("!reset", reset)
        Loader.add_constructor("!override", override)
    return Loader
