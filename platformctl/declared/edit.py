"""Rewriting ``spec.runtime.image_observed`` in one manifest: minimal, verified, atomic.

The edit is targeted rather than a YAML round trip (docs/observe.md, "Editing manifests"):
PyYAML's composer gives the exact character span of every scalar, only the spans of
``image_observed`` (or of its ``image``/``digest``/``observed_at`` entries) are replaced, in
the quoting style each already has, and every other character of the file is kept as it was.
The result is parsed again and must equal the old document with exactly the new value in
place; anything else refuses the edit.

Reads go through :func:`platformctl.declared.files.read_repo_file` (inside the root, regular,
bounded); writes go to the resolved file inside the root, through a temporary file in the same
folder, ``fsync`` and ``rename`` (in place where a replacement could not keep the file's mode,
owner, group and attributes), and never over a file that changed on disk since it was read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from platformctl.clock import to_iso
from platformctl.declared.files import RepoFileError, read_repo_file, resolve_inside
from platformctl.declared.yamlfile import MAX_FILE_BYTES, composed, invalid_yaml, loaded
from platformctl.paths import replace_file

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{1,2}:\d{2}")


class EditProblem(ValueError):
    """A manifest that cannot be edited safely; the message says why (and names the file)."""


class EditConflict(EditProblem):
    """The file changed on disk after it was read: it is left as it is."""


@dataclass(frozen=True)
class Observed:
    """The new audit record: a reference as it is to be spelled, and when it was observed."""

    repository: str
    """The repository as the manifest should spell it (e.g. ``nginx`` or ``ghcr.io/org/app``)."""
    tag: str | None
    digest: str
    at: datetime

    @property
    def name(self) -> str:
        """``repository[:tag]`` without the digest."""
        return f"{self.repository}:{self.tag}" if self.tag else self.repository

    @property
    def reference(self) -> str:
        """``repository[:tag]@digest``."""
        return f"{self.name}@{self.digest}"


@dataclass(frozen=True)
class ManifestEdit:
    """One planned edit: the file's bytes as read and as they would be written."""

    path: Path
    """The manifest path as the declared state names it."""
    real: Path
    """The file it resolves to (inside the root): what is replaced."""
    before: bytes
    after: bytes

    @property
    def before_text(self) -> str:
        """The old content as text."""
        return self.before.decode("utf-8")

    @property
    def after_text(self) -> str:
        """The new content as text."""
        return self.after.decode("utf-8")


def plan_edit(root: Path, path: Path, observed: Observed) -> ManifestEdit:
    """The edit that writes ``observed`` into the manifest at ``path``; nothing is written.

    Raises :class:`EditProblem` when the file cannot be read or the value cannot be replaced
    safely (an anchor, alias, tag or block scalar; a merge key; a duplicate key).
    """
    try:
        real = resolve_inside(root, path)
        data = read_repo_file(root, path, MAX_FILE_BYTES)
    except RepoFileError as exc:
        raise EditProblem(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditProblem(f"{path}: not UTF-8 (byte {exc.start})") from None
    # libyaml's marks do not count a byte-order mark; it is set aside and put back.
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom) :]
    new_text, expected = _edit_text(path, text, observed)
    _verify(path, text, new_text, expected)
    return ManifestEdit(path=path, real=real, before=data, after=(bom + new_text).encode("utf-8"))


def write_edit(root: Path, edit: ManifestEdit) -> None:
    """Make the file hold ``edit.after``: atomically, keeping its mode, owner, group and
    extended attributes, or in place where a replacement could not keep them
    (:func:`platformctl.paths.replace_file`).

    Raises :class:`EditConflict` when the file no longer holds ``edit.before`` (it is then
    left untouched) and :class:`EditProblem` when it cannot be written (a file whose own
    mode keeps this user out among them).
    """
    try:
        real = resolve_inside(root, edit.path)
    except RepoFileError as exc:
        raise EditProblem(str(exc)) from None
    if real != edit.real:
        raise EditConflict(f"{edit.path}: now resolves to {real}, not {edit.real}; not written")
    try:
        # Compare what is on disk now with what was read, as late as possible: an editor or
        # a `git checkout` since the plan must win over our edit.
        replace_file(real, edit.after, lambda: _check_unchanged(root, real, edit))
    except OSError as exc:
        raise EditProblem(f"{edit.path}: cannot write: {exc.strerror or exc}") from None


def _check_unchanged(root: Path, real: Path, edit: ManifestEdit) -> None:
    try:
        current = read_repo_file(root, real, MAX_FILE_BYTES)
    except RepoFileError as exc:
        raise EditConflict(
            f"{edit.path}: cannot be read again before writing ({exc}); not written"
        ) from None
    if _digest(current) != _digest(edit.before):
        raise EditConflict(
            f"{edit.path}: changed on disk since it was read; not overwritten (run observe again)"
        )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the targeted edit ------------------------------------------------------------------


@dataclass(frozen=True)
class _Splice:
    start: int
    end: int
    text: str


def _edit_text(path: Path, text: str, observed: Observed) -> tuple[str, Any]:
    """The new text and the ``image_observed`` value it must parse to."""
    where = f"{path}: spec.runtime.image_observed"
    try:
        doc = composed(text)
    except yaml.YAMLError as exc:
        raise EditProblem(invalid_yaml(path, exc)) from None
    except RecursionError:  # PyYAML's composer recurses a level at a time
        raise EditProblem(f"{path}: nested too deeply to edit safely; edit it by hand") from None
    spec = _child(path, doc, "spec", "")
    runtime = _child(path, spec, "runtime", "spec")
    value = _child(path, runtime, "image_observed", "spec.runtime")
    # An anchor on a mapping that holds the value shares it with every alias of that anchor:
    # the span would change them all (an alias is the anchored node itself here).
    for node, name in ((doc, "the document"), (spec, "spec"), (runtime, "spec.runtime")):
        _plain_node(text, node, f"{path}: {name}")
    _plain_node(text, value, where)

    if isinstance(value, yaml.ScalarNode):
        scalar = _scalar(observed.reference, value.style)
        return _apply(text, [_replace(value, scalar)]), observed.reference
    if not isinstance(value, yaml.MappingNode):
        raise EditProblem(f"{where} must be a string or a mapping")

    entries = {}
    for key, node in value.value:
        if isinstance(key, yaml.ScalarNode) and key.value in ("image", "digest", "observed_at"):
            if key.value in entries:
                raise EditProblem(f"{where}.{key.value} appears twice")
            if not isinstance(node, yaml.ScalarNode):
                raise EditProblem(f"{where}.{key.value} must be a plain value")
            _plain_node(text, node, f"{where}.{key.value}")
            entries[key.value] = (key, node)
    if "image" not in entries:
        raise EditProblem(f"{where}.image is missing")
    image_key, image_node = entries["image"]
    splices: list[_Splice] = []
    expected: dict[str, Any] = {}

    image = observed.reference if "@" in image_node.value else observed.name
    splices.append(_replace(image_node, _scalar(image, image_node.style)))
    expected["image"] = image
    style = image_node.style
    if "digest" in entries:
        node = entries["digest"][1]
        splices.append(_replace(node, _scalar(observed.digest, node.style)))
        expected["digest"] = observed.digest
    elif "@" not in image:
        expected["digest"] = observed.digest

    if "observed_at" in entries:
        node = entries["observed_at"][1]
        when = _when(node.value, observed.at)
        rendered = _scalar(when, node.style, date_ok=True)
        splices.append(_replace(node, rendered))
        expected["observed_at"] = yaml.safe_load(rendered)
    else:
        expected["observed_at"] = observed.at.date()

    missing = [k for k in ("digest", "observed_at") if k in expected and k not in entries]
    if missing:
        after = max((entries[k][1] for k in ("image", "digest") if k in entries), key=_end)
        lines = [
            (
                k,
                _scalar(observed.digest, style)
                if k == "digest"
                else _scalar(observed.at.date().isoformat(), None, date_ok=True),
            )
            for k in missing
        ]
        splices.append(_insertion(text, value, image_key, after, lines))
    return _apply(text, splices), expected


def _child(path: Path, node: yaml.Node, key: str, parent: str) -> yaml.Node:
    """The value of ``key`` written in the mapping ``node`` (at ``parent``)."""
    if not isinstance(node, yaml.MappingNode):
        raise EditProblem(f"{path}: {key} is not inside a mapping")
    found: list[yaml.Node] = []
    merged = False
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode):
            merged = merged or k.tag == "tag:yaml.org,2002:merge"
            if k.value == key:
                found.append(v)
    if len(found) > 1:
        raise EditProblem(f"{path}: {key} appears twice")
    if found:
        return found[0]
    name = f"{parent}.{key}" if parent else key
    if merged:
        raise EditProblem(f"{path}: {name} is not written literally in {parent} (a merge key?)")
    raise EditProblem(f"{path}: {name} is missing")


def _plain_node(text: str, node: yaml.Node, where: str) -> None:
    """Refuse what a span replacement would break: anchors, aliases, tags, block scalars."""
    if text[_start(node) : _start(node) + 1] in ("&", "*", "!"):
        raise EditProblem(f"{where} uses a YAML anchor, alias or tag; edit it by hand")
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        raise EditProblem(f"{where} is a block scalar; edit it by hand")


def _replace(node: yaml.Node, rendered: str) -> _Splice:
    """Replace ``node``'s span with ``rendered``. An empty value (``key:`` with nothing after
    it) has an empty span right after the colon, so it gets a separating space."""
    if _start(node) == _end(node):
        rendered = " " + rendered
    return _Splice(_start(node), _end(node), rendered)


def _start(node: yaml.Node) -> int:
    return int(node.start_mark.index)


def _end(node: yaml.Node) -> int:
    return int(node.end_mark.index)


def _when(old: str, at: datetime) -> str:
    """``observed_at`` in the form the file already uses: a timestamp or (default) a date."""
    if _TIMESTAMP_RE.match(old.strip()):
        return to_iso(at)
    return at.date().isoformat()


def _scalar(value: str, style: str | None, date_ok: bool = False) -> str:
    """``value`` as a YAML scalar in ``style`` (plain, ``'`` or ``"``).

    A plain scalar that would not read back as the same string (or, for ``observed_at``, as
    the same date or timestamp text) is double-quoted instead.
    """
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or style not in (None, ""):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        loaded = None
    if loaded == value or (date_ok and isinstance(loaded, date | datetime)):
        return value
    return _scalar(value, '"')


def _insertion(
    text: str,
    mapping: yaml.MappingNode,
    first_key: yaml.Node,
    after: yaml.Node,
    entries: Sequence[tuple[str, str]],
) -> _Splice:
    """New ``key: value`` entries after ``after``'s value: a line each in a block mapping
    (indented as ``first_key``, with the file's line ending), ``, key: value`` in a flow one."""
    at = _end(after)
    if mapping.flow_style:
        return _Splice(at, at, "".join(f", {k}: {v}" for k, v in entries))
    eol, newline = _line_end(text, at)
    indent = " " * int(first_key.start_mark.column)
    return _Splice(eol, eol, "".join(f"{newline}{indent}{k}: {v}" for k, v in entries))


_BREAK = re.compile(r"\r\n|\r|\n")


def _line_end(text: str, at: int) -> tuple[int, str]:
    """Where the line holding ``at`` ends, and the line break new lines after it take: its
    own (a file may mix them), or on a last line without one the break of the line before."""
    found = _BREAK.search(text, at)
    if found is not None:
        return found.start(), found.group()
    before = [m.group() for m in _BREAK.finditer(text, 0, at)]
    return len(text), before[-1] if before else "\n"


def _apply(text: str, splices: list[_Splice]) -> str:
    for s in sorted(splices, key=lambda s: s.start, reverse=True):
        text = text[: s.start] + s.text + text[s.end :]
    return text


def _verify(path: Path, old_text: str, new_text: str, expected: Any) -> None:
    """The new text must parse to the old document with ``image_observed`` = ``expected``
    (for the mapping form: the old mapping with those keys replaced)."""
    try:
        old = loaded(old_text)
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # as the manifest reader refuses it
        raise EditProblem(invalid_yaml(path, exc)) from None
    except RecursionError:
        raise EditProblem(f"{path}: nested too deeply to edit safely; edit it by hand") from None
    try:
        new = loaded(new_text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise EditProblem(
            f"{path}: the edited file would not parse ({first}); not written"
        ) from None
    if not _within(old, _MAX_VALUES):
        # Aliases can make a small file a huge tree, which comparing old and new would walk
        # whole (a 713-byte manifest hung observe).
        raise EditProblem(
            f"{path}: holds more than {_MAX_VALUES:,} values once its aliases are expanded; "
            "edit it by hand"
        )
    # The old document with the one value changed, in new mappings along its path only: a
    # mapping there that aliases share elsewhere (deepcopy would keep it shared) must not
    # carry the change to them, and a new text that does is refused below.
    spec = old["spec"]
    runtime = spec["runtime"]
    value = expected
    if isinstance(expected, dict):
        value = {**runtime["image_observed"], **expected}
    want = {**old, "spec": {**spec, "runtime": {**runtime, "image_observed": value}}}
    try:
        same = new == want
    except RecursionError:  # comparing nested lists recurses a level at a time
        raise EditProblem(f"{path}: nested too deeply to edit safely; edit it by hand") from None
    if not same:
        raise EditProblem(
            f"{path}: the edit would change more than spec.runtime.image_observed; "
            "not written (edit it by hand)"
        )


# Values an edited manifest may hold, aliases expanded; a manifest holds a few dozen.
_MAX_VALUES = 100_000


def _within(document: Any, budget: int) -> bool:
    """Whether ``document`` holds at most ``budget`` values, each alias's counted again (as
    comparing two documents walks them), without walking more than that."""
    stack = [document]
    while stack:
        value = stack.pop()
        budget -= 1
        if budget < 0:
            return False
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True
