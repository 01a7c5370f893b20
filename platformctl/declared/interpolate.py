"""Compose variable interpolation and ``.env`` files, as docker compose v2 reads them.

Only the stack's ``.env`` file is a source of values: the shell that will run ``docker
compose`` on the host is not the shell running platformctl, so reading our own environment
would give verdicts that depend on who runs the check. Where compose would fall back to that
environment (a variable the ``.env`` file does not set and that has no default), the value is
*unresolved*: the verdict is withheld rather than guessed (docs/compose.md, "Decisions").

Messages never quote a ``.env`` value (those files hold passwords): they name the key and
the line. Where compose v1 and v2 read an input differently, v2 (compose-go) is followed;
each such difference is listed in docs/compose.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

_NAME_RE = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
# compose-go's braced form: a name, then optionally one of the operators and its argument.
_BRACED = re.compile(
    r"(?P<name>[_A-Za-z][_A-Za-z0-9]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?", re.S
)


# Bounds compose has not: a value that expands past MAX_VALUE is left unresolved, arguments
# nested deeper than _MAX_NESTING are invalid, and a `.env` whose values together expand past
# MAX_ENV_VALUES is refused. A few hundred bytes of `V2=${V1}${V1}` lines otherwise asked for
# terabytes, and a `${A:-${A:-…}}` six hundred deep overflowed the interpreter's stack.
MAX_VALUE = 64 * 1024
MAX_ENV_VALUES = 4 * 1024 * 1024
_MAX_NESTING = 32


class UnresolvedVariable(ValueError):
    """A value that depends on a variable the ``.env`` file does not define, or on an
    invalid ``$`` expression."""


class EnvFileError(ValueError):
    """A ``.env`` file compose itself would refuse (the message names the line)."""


@dataclass(frozen=True)
class DotEnv(Mapping[str, str]):
    """The variables of one ``.env`` file.

    ``known`` holds the values read; ``unresolved`` holds the keys whose value refers to
    something the file does not define (with why): they are *set* for compose (``${KEY-x}``
    does not fall back) but their value is not known here, so reading one raises
    :class:`UnresolvedVariable`.
    """

    known: Mapping[str, str] = field(default_factory=dict)
    unresolved: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        if key in self.unresolved:
            raise UnresolvedVariable(self.unresolved[key])
        return self.known[key]

    def __contains__(self, key: object) -> bool:
        return key in self.known or key in self.unresolved

    def __iter__(self) -> Iterator[str]:
        yield from self.known
        yield from (k for k in self.unresolved if k not in self.known)

    def __len__(self) -> int:
        return len(set(self.known) | set(self.unresolved))


class Layered(Mapping[str, str]):
    """Variables looked up in ``first``, then in ``then``: a ``.env`` read with the entries
    above a line before the variables it is read under (an included model's)."""

    def __init__(self, first: Mapping[str, str], then: Mapping[str, str]) -> None:
        self._first, self._then = first, then

    def __getitem__(self, key: str) -> str:
        return self._first[key] if key in self._first else self._then[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first or key in self._then

    def __iter__(self) -> Iterator[str]:
        yield from self._first
        yield from (k for k in self._then if k not in self._first)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def interpolate(text: str, env: Mapping[str, str], _nesting: int = 0) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``, ``${VAR?e}``,
    ``${VAR:+r}``, ``${VAR+r}`` (arguments nest, as in compose v2) and ``$$``.

    Raises :class:`UnresolvedVariable` for a variable with no value and no default, for a
    failing ``?`` operator, for an invalid ``$`` expression (which compose rejects), and past
    the bounds above.
    """
    if _nesting > _MAX_NESTING:
        raise UnresolvedVariable(f"invalid interpolation: nested deeper than {_MAX_NESTING}")
    out: list[str] = []
    size = 0
    i = 0
    n = len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        size += j - i
        nxt = text[j + 1 : j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = _closing_brace(text, j)
            if end < 0:
                raise UnresolvedVariable("invalid interpolation: '${' without its closing '}'")
            out.append(_expand_braced(text[j + 2 : end], env, _nesting))
            i = end + 1
        else:
            m = _NAME_RE.match(text, j + 1)
            if not m:
                raise UnresolvedVariable(
                    "invalid interpolation: '$' must be followed by a name, "
                    "'{' or '$' (write '$$' for a literal '$')"
                )
            out.append(_lookup(m.group(0), env))
            i = m.end()
        size += len(out[-1])
        if size > MAX_VALUE:
            raise UnresolvedVariable(f"expands past {MAX_VALUE // 1024} KiB")
    return "".join(out)


def _lookup(name: str, env: Mapping[str, str]) -> str:
    if name not in env:
        raise UnresolvedVariable(f"variable {name} is not set in .env")
    return env[name]


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` at ``start``; only ``${`` opens a level, as in
    compose-go (a lone ``{`` inside a default is literal)."""
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _expand_braced(body: str, env: Mapping[str, str], nesting: int) -> str:
    m = _BRACED.fullmatch(body)
    if not m:
        raise UnresolvedVariable("invalid interpolation: '${' must start with a variable name")
    name, op, arg = m.group("name"), m.group("op"), m.group("arg")
    if op is None:
        return _lookup(name, env)
    present = name in env
    value = env[name] if present else None
    if op == ":-":
        return value if value else interpolate(arg, env, nesting + 1)
    if op == "-":
        return value if value is not None else interpolate(arg, env, nesting + 1)
    if op in (":?", "?"):
        if value is None or (op == ":?" and not value):
            # The message as written, not expanded: expanded, it could quote a `.env` value
            # (`${X:?$DB_PASSWORD}`), and those are never quoted.
            message = " ".join(arg.split())[:200] if arg else "not set"
            raise UnresolvedVariable(f"variable {name} is required: {message}")
        return value
    if op == ":+":
        return interpolate(arg, env, nesting + 1) if value else ""
    return interpolate(arg, env, nesting + 1) if value is not None else ""


# --- .env files -----------------------------------------------------------------------------

# compose-go's "space but not a line break".
_SPACE = "\t\v\f\r \x85\xa0"
_EXPORT = re.compile(r"export[ \t\n\f\r]+")
_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-7]{0,3})")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "c": "\\c",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
}


def parse_env(text: str, outer: Mapping[str, str] | None = None) -> DotEnv:
    """Parse the text of a compose ``.env`` file as compose v2 does.

    ``KEY=VALUE`` (or ``KEY: VALUE``) statements, optional ``export``, ``#`` comments (in an
    unquoted value only after a space), single quotes literal, double quotes with escapes,
    values spanning lines inside quotes, a leading UTF-8 byte-order mark ignored, CRLF line
    ends. Unquoted and double-quoted values are interpolated from the entries above them (then
    from ``outer``, the variables an included model's ``.env`` is read under) with the same
    operators as compose files. Raises :class:`EnvFileError` where compose v2 refuses the
    file.
    """
    text = text.removeprefix("\ufeff")
    values: dict[str, str] = {}
    unresolved: dict[str, str] = {}
    # The entries parsed so far: later values refer to earlier ones, then to ``outer``.
    env_so_far: Mapping[str, str] = DotEnv(values, unresolved)
    if outer is not None:
        env_so_far = Layered(env_so_far, outer)
    pos = 0
    n = len(text)
    total = 0
    while True:
        pos = _statement_start(text, pos)
        if pos >= n:
            break
        key, pos, inherited = _key(text, pos)
        if inherited:
            # `KEY` alone takes the value from the caller's environment: not ours to read.
            continue
        raw, pos, quote = _value(text, pos)
        if quote == "'":
            value: str | None = raw
        else:
            source = _expand_escapes(raw) if quote == '"' else raw
            try:
                value = interpolate(source, env_so_far)
            except UnresolvedVariable as exc:
                value = None
                unresolved[key] = f"{key} in .env: {exc}"
        if value is not None:
            total += len(value)
            if total > MAX_ENV_VALUES:
                raise EnvFileError(
                    f"line {_line(text, pos)}: the values expand past "
                    f"{MAX_ENV_VALUES // (1024 * 1024)} MiB in all; refused"
                )
            values[key] = value
            unresolved.pop(key, None)
        else:
            values.pop(key, None)
    return DotEnv(values, unresolved)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _statement_start(text: str, pos: int) -> int:
    """Skip blank space and comment lines; return where the next statement starts."""
    n = len(text)
    while pos < n:
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "#":
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl
        else:
            break
    return pos


def _key(text: str, pos: int) -> tuple[str, int, bool]:
    """The key at ``pos``, the position after its ``=``/``:``, and whether it is a bare
    ``KEY`` line (inherited from the environment)."""
    m = _EXPORT.match(text, pos)
    if m:
        pos = m.end()
        while pos < len(text) and text[pos] in _SPACE:
            pos += 1
    start = pos
    i = pos
    while i < len(text):
        ch = text[i]
        if ch in "=:\n":
            key = text[start:i].rstrip()
            if " " in key:
                raise EnvFileError(f"line {_line(text, start)}: key cannot contain a space")
            if ch == "\n":
                return key, i + 1, True
            i += 1
            while i < len(text) and text[i] in _SPACE:
                i += 1
            return key, i, False
        if ch in _SPACE or ch in "_.-[]" or ch.isalnum():
            i += 1
            continue
        raise EnvFileError(f"line {_line(text, i)}: unexpected character {ch!r} in variable name")
    # A last line without '=' nor a line end: a bare key, like `KEY\n`.
    return text[start:].rstrip(), len(text), True


def _value(text: str, pos: int) -> tuple[str, int, str]:
    """The raw value at ``pos`` (quotes removed, escapes not yet expanded), the position
    after it, and its quote character ("" when unquoted)."""
    quote = text[pos : pos + 1]
    if quote not in ("'", '"'):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl
        value = text[pos:end].split(" #", 1)[0].rstrip()
        return value, end, ""
    chars: list[str] = []
    i = pos + 1
    escaped = False
    while i < len(text):
        ch = text[i]
        if escaped:
            escaped = False
            # An escaped quote loses its backslash; any other escape is kept for later.
            if ch != quote:
                chars.append("\\")
            chars.append(ch)
        elif ch == "\\":
            escaped = True
        elif ch == quote:
            return "".join(chars), i + 1, quote
        else:
            chars.append(ch)
        i += 1
    raise EnvFileError(f"line {_line(text, pos)}: unterminated quoted value")


def _expand_escapes(value: str) -> str:
    """Backslash escapes of a double-quoted value; ``\\$`` becomes ``$$`` (a literal ``$``
    for the interpolation that follows)."""

    def one(m: re.Match[str]) -> str:
        s = m.group(0)
        if s == "\\$":
            return "$$"
        if s.startswith("\\0"):
            digits = s[2:]
            if len(digits) == 3 and int(digits, 8) < 256:
                return chr(int(digits, 8))
            return "\\" + digits
        return _SIMPLE_ESCAPES[s[1]]

    return _ESCAPE.sub(one, value)
