"""Compose variable interpolation and ``.env`` files, as docker compose reads them.

Only the stack's ``.env`` file is a source of values: the shell that will run ``docker compose``
on the host is not the shell running platformctl, so reading our own environment would give
verdicts that depend on who runs the check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_NAME = r"[_A-Za-z][_A-Za-z0-9]*"
_BRACED = re.compile(rf"^(?P<name>{_NAME})(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


class UnresolvedVariable(ValueError):
    """A variable the ``.env`` file does not define and that has no default."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a compose ``.env`` file: ``KEY=VALUE`` lines, comments, quotes, ``export``."""
    values: dict[str, str] = {}
    text = path.read_bytes().decode("utf-8", errors="replace")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(_NAME, key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key] = value
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``, ``$$`` and kin.

    Raises :class:`UnresolvedVariable` for a variable with no value and no default, and for
    ``${VAR:?err}`` on an unset or empty variable.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise UnresolvedVariable(f"unterminated ${{ in {text!r}")
            out.append(_expand_braced(text[i + 2 : end], env))
            i = end + 1
        else:
            m = re.match(_NAME, text[i + 1 :])
            if not m:
                out.append("$")
                i += 1
                continue
            name = m.group(0)
            if name not in env:
                raise UnresolvedVariable(f"variable {name} is not set in .env")
            out.append(env[name])
            i += 1 + len(name)
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _expand_braced(body: str, env: Mapping[str, str]) -> str:
    m = _BRACED.match(body)
    if not m:
        raise UnresolvedVariable(f"invalid interpolation ${{{body}}}")
    name, op, arg = m.group("name"), m.group("op"), m.group("arg")
    value = env.get(name)
    if op is None:
        if value is None:
            raise UnresolvedVariable(f"variable {name} is not set in .env")
        return value
    if op == ":-":
        return value if value else interpolate(arg, env)
    if op == "-":
        return value if value is not None else interpolate(arg, env)
    if op in (":?", "?"):
        if value is None or (op == ":?" and not value):
            raise UnresolvedVariable(f"variable {name} is required: {arg or 'not set'}")
        return value
    if op == ":+":
        return interpolate(arg, env) if value else ""
    return interpolate(arg, env) if value is not None else ""
