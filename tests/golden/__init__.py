"""Golden files: the outputs of every command on the lab scenarios, normalized.

The restructuring of the output stage must not change a byte of what users see. What varies
from run to run (times, IDs, digests of freshly built images, ports, temporary folders,
durations) is replaced by stable placeholders, numbered in order of appearance so that "the same
digest twice" still reads as the same placeholder twice.

Run the tests with ``PLATFORMCTL_UPDATE_GOLDEN=1`` to rewrite the files after an intended change.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX12 = re.compile(r"(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])")
_PORT = re.compile(r"127\.0\.0\.1:\d+")
_DURATION_MS = re.compile(r'("(?:duration_ms|drift_seconds)": )\d+|\b\d+ ms\b')
_AGE = re.compile(r"\b\d+[smhd](?: \d+[smh])?\b")
_SNAPSHOT = re.compile(r'("id": |"snapshot": |snapshot )\d+')


def normalize(text: str, *roots: Path) -> str:
    """Replace what varies between runs with numbered placeholders."""
    for root in roots:
        text = text.replace(str(root), "<root>")
    text = _TIME.sub("<time>", text)
    text = _PORT.sub("127.0.0.1:<port>", text)
    text = _numbered(_HEX64, "hex", text)
    text = _numbered(_HEX12, "short", text)
    text = _DURATION_MS.sub(lambda m: (m.group(1) or "") + "<ms>" if m.group(1) else "<ms>", text)
    text = _SNAPSHOT.sub(lambda m: m.group(1) + "<id>", text)
    return _AGE.sub("<age>", text)


def stable_json(text: str, keep: tuple[str, ...]) -> str:
    """A JSON document with the containers of other tests' workloads left out.

    The lab's engines are shared by the whole session, so a snapshot also holds containers that
    other tests started, in an order set by their random IDs. Only containers whose name starts
    with one of ``keep`` stay, sorted by name; container counts become ``<n>``. The document is
    first checked to be exactly ``json.dumps(doc, indent=2)``, so the format is still compared.
    """
    doc = json.loads(text)
    assert json.dumps(doc, indent=2) == text.rstrip("\n"), "not json.dumps(..., indent=2)"
    return json.dumps(_only(doc, keep), indent=2) + "\n"


def _only(value: Any, keep: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "containers" and isinstance(item, int):
                out[key] = "<n>"
            elif key in ("containers", "added", "removed", "changed") and isinstance(item, list):
                kept = [c for c in item if _name(c).startswith(keep)]
                out[key] = sorted((_only(c, keep) for c in kept), key=_name)
            elif key == "images" and isinstance(item, list):
                out[key] = "<images>"
            else:
                out[key] = _only(item, keep)
        return out
    if isinstance(value, list):
        return [_only(v, keep) for v in value]
    return value


def _name(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("name") or item.get("container") or "")
    return str(item)


def stable_table(text: str, keep: tuple[str, ...], names: set[str]) -> str:
    """A table with the rows of other tests' containers left out and runs of spaces folded.

    ``names`` are every container name the output may hold: a line naming one that does not
    start with ``keep`` is dropped, and consecutive lines naming kept containers are sorted.
    """
    lines: list[str] = []
    block: list[str] = []
    for line in text.splitlines():
        named = {w.rstrip(":") for w in line.split()} & names
        if named:
            if all(n.startswith(keep) for n in named):
                block.append(line)
            continue
        lines.extend(sorted(block))
        block = []
        lines.append(line)
    lines.extend(sorted(block))
    return "\n".join(re.sub(r"  +", "  ", line) for line in lines) + "\n"


def _numbered(pattern: re.Pattern[str], label: str, text: str) -> str:
    seen: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        return seen.setdefault(m.group(0), f"<{label}{len(seen) + 1}>")

    return pattern.sub(sub, text)


def check(name: str, text: str) -> None:
    """Compare ``text`` with ``tests/golden/NAME``; rewrite it when asked to."""
    path = HERE / name
    if os.environ.get("PLATFORMCTL_UPDATE_GOLDEN"):
        path.write_text(text)
        return
    assert path.exists(), f"{path} missing: run with PLATFORMCTL_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text()
    if text != expected:
        import difflib

        diff = difflib.unified_diff(
            expected.splitlines(), text.splitlines(), str(path), "now", lineterm=""
        )
        raise AssertionError("\n".join(diff))
