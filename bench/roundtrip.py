"""Measurement: which way of rewriting ``image_observed`` keeps every other byte of a manifest.

Run: ``python -m bench.roundtrip`` (ruamel.yaml must be importable for its column; it is not a
dependency of platformctl: ``pip install ruamel.yaml`` in a scratch environment). For every
manifest in ``tests/observe_manifests/`` it writes a new ``image_observed`` twice, once with
ruamel.yaml's round-trip mode (``preserve_quotes``, indentation guessed from the file) and once
with platformctl's targeted edit, and counts the lines that changed although they hold neither
``image``, ``digest`` nor ``observed_at``, and whether the value kept its quoting style.
docs/observe.md records the last figures and the decision they led to.
"""

from __future__ import annotations

import difflib
import io
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platformctl.declared.edit import Observed, plan_edit

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "observe_manifests"
NEW = Observed(
    repository="registry.example:5000/org/web",
    tag="1.1",
    digest="sha256:" + "11" * 32,
    at=datetime(2026, 11, 27, tzinfo=UTC),
)
TARGETS = ("image_observed", "image:", "digest:", "observed_at")


def stray_lines(before: str, after: str) -> tuple[int, list[str]]:
    """Lines added or removed by the edit that are not the value's own lines."""
    stray = [
        line
        for line in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
        if line[:1] in "+-"
        and not line.startswith(("+++", "---"))
        and not any(t in line for t in TARGETS)
    ]
    return len(stray), stray


def with_ruamel(text: str) -> str:
    """Set the value with ruamel.yaml's round-trip loader and dumper."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    y = YAML()  # round-trip mode
    y.preserve_quotes = True
    y.width = 4096  # no re-wrapping of long lines: the fairest setting for this use
    offset = block_seq_indent or 0
    y.indent(mapping=indent, sequence=indent + offset, offset=offset)
    doc = y.load(text)
    value: Any = doc["spec"]["runtime"]["image_observed"]
    if isinstance(value, str):
        # A quoted scalar loads as a str subclass that remembers its style: keep that type.
        doc["spec"]["runtime"]["image_observed"] = type(value)(NEW.reference)
    else:
        image = NEW.reference if "@" in value["image"] else NEW.name
        value["image"] = type(value["image"])(image)
        if "digest" in value or "@" not in image:
            value["digest"] = NEW.digest
        value["observed_at"] = NEW.at.date()
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def with_targeted(path: Path) -> str:
    """Set the value with platformctl's own span edit."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = root / "modules" / "m" / "module.yaml"
        target.parent.mkdir(parents=True)
        shutil.copyfile(path, target)
        return plan_edit(root, target, NEW).after_text


def main() -> int:
    try:
        import ruamel.yaml  # noqa: F401

        have_ruamel = True
    except ImportError:
        have_ruamel = False
    print(f"{'manifest':28} {'ruamel stray lines':>20} {'targeted stray lines':>22}")
    for path in sorted(CORPUS.glob("*.yaml")):
        text = path.read_bytes().decode("utf-8")
        cells = []
        if have_ruamel:
            try:
                n, _ = stray_lines(text, with_ruamel(text))
                cells.append(str(n))
            except Exception as exc:  # measuring: report, do not stop
                cells.append(f"error: {type(exc).__name__}")
        else:
            cells.append("(not installed)")
        n, _ = stray_lines(text, with_targeted(path))
        cells.append(str(n))
        print(f"{path.name:28} {cells[0]:>20} {cells[1]:>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
