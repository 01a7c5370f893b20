"""Field-level explanations of a difference, computed with deepdiff.

deepdiff is imported lazily, only when there is a difference to explain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

Changes = dict[str, tuple[str | None, str | None]]
_KEY = re.compile(r"^root\['(?P<key>[^']+)'\]$")


def field_changes(
    expected: Mapping[str, str | None],
    observed: Mapping[str, str | None],
    explain: bool,
) -> Changes:
    """``{field: (declared, live)}`` for every field of ``expected`` that ``observed`` differs in.

    Both mappings are flat and share their keys. With ``explain=False`` (history, where only
    the status matters) the same answer is computed without deepdiff.
    ``threshold_to_diff_deeper=0`` because since deepdiff 8.0 dicts sharing few keys otherwise
    come back as one whole ``values_changed``.
    """
    seen = {k: observed.get(k) for k in expected}
    if seen == dict(expected):
        return {}  # nothing to explain; spares the deepdiff import on all-matching runs
    if not explain:
        return {k: (v, seen[k]) for k, v in expected.items() if seen[k] != v}
    from deepdiff import DeepDiff

    diff = DeepDiff(
        dict(expected),
        seen,
        threshold_to_diff_deeper=0,
        verbose_level=2,
    )
    changes: Changes = {}
    for kind in ("values_changed", "type_changes"):
        for path, change in diff.get(kind, {}).items():
            m = _KEY.match(path)
            if m:
                changes[m.group("key")] = (change.get("old_value"), change.get("new_value"))
    return {k: changes[k] for k in expected if k in changes}
