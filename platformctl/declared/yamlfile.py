"""Reading one YAML file into plain data, with a one-line problem instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformctl.declared.files import MiB, RepoFileError, read_repo_file

if TYPE_CHECKING:
    from platformctl.declared.yamlcache import ParsedYamlCache

MAX_FILE_BYTES = 4 * MiB
_NOT_CACHED = object()


class YamlProblem(ValueError):
    """A file that is not readable YAML; the message names the file and line."""


def load_yaml(path: Path, root: Path, cache: ParsedYamlCache | None = None) -> Any:
    """Parse ``path`` (a file inside ``root``) with the safe loader; raise
    :class:`YamlProblem` saying where and what. With ``cache``, bytes parsed before are not
    parsed again."""
    document = load_yaml_many((path,), root, cache)[0]
    if isinstance(document, YamlProblem):
        raise document
    return document


def load_yaml_many(
    paths: Sequence[Path], root: Path, cache: ParsedYamlCache | None = None
) -> list[Any]:
    """What :func:`load_yaml` gives for each of ``paths``, with a :class:`YamlProblem` in the
    place of each file it would raise for. The files are read first and then looked up in the
    cache together (see :meth:`ParsedYamlCache.get_many`)."""
    read: list[bytes | YamlProblem] = []
    for path in paths:
        try:
            read.append(read_repo_file(root, path, MAX_FILE_BYTES))
        except RepoFileError as exc:
            read.append(YamlProblem(str(exc)))
    found: Iterator[Any] = iter(())
    if cache is not None:
        from platformctl.declared.yamlcache import MISSING

        datas = [data for data in read if isinstance(data, bytes)]
        found = (_NOT_CACHED if doc is MISSING else doc for doc in cache.get_many(datas))
    documents: list[Any] = []
    for path, data in zip(paths, read, strict=True):
        if isinstance(data, YamlProblem):
            documents.append(data)
            continue
        document = next(found, _NOT_CACHED)
        if document is _NOT_CACHED:
            try:
                document = _decode_and_parse(path, data)
            except YamlProblem as exc:
                document = exc.with_traceback(None)
            else:
                if cache is not None:
                    cache.add(data, document)
        documents.append(document)
    return documents


def _decode_and_parse(path: Path, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    return _parse(path, text)


def _parse(path: Path, text: str) -> Any:
    # Imported here: a run whose files are all in the cache never needs PyYAML (its import
    # compiles a large regular expression; docs/design.md, "Start-up").
    import yaml

    # libyaml's parser when PyYAML was built with it (the wheels are): about nine times faster
    # than the pure-Python one, which matters at hundreds of manifests (bench/README.md). Both
    # are the safe loader: plain data only.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(f"{where}: invalid YAML: {what}") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise YamlProblem(f"{path}: invalid YAML: {str(exc).splitlines()[0][:200]}") from None
