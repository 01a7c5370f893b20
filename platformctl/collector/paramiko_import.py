"""Import paramiko without invoke.

paramiko (3.2 and later) imports invoke when it starts, only so that its own ``SSHConfig`` can
run ``Match exec``; invoke in turn imports asyncio, ssl and unittest.mock. That is about half of
paramiko's import time, spent before a run's first packet can leave (bench/README.md). Our
ssh config resolution is OpenSSH's ``ssh -G``; only the fallback resolver uses paramiko's
``SSHConfig``, and it puts invoke back (:func:`with_match_exec`).

paramiko.config already treats a missing invoke as "Match exec unavailable" and raises only
when a config uses it, so hiding invoke while paramiko imports changes nothing else.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

_lock = threading.Lock()


def import_paramiko() -> None:
    """Import paramiko (once per process) without letting it import invoke.

    Call before ``import paramiko``; a no-op once paramiko is loaded, or when something else
    already imported invoke (then it costs nothing more).
    """
    if "paramiko" in sys.modules:
        return
    with _lock:
        if "paramiko" in sys.modules or "invoke" in sys.modules:
            import paramiko  # noqa: F401

            return
        # None in sys.modules makes `import invoke` raise ImportError, which paramiko.config
        # catches; only for the duration of this import, so others can still import invoke.
        sys.modules["invoke"] = None  # type: ignore[assignment]
        try:
            import paramiko  # noqa: F401
        finally:
            if sys.modules.get("invoke", ...) is None:
                del sys.modules["invoke"]


def with_match_exec() -> ModuleType:
    """paramiko.config, able to run ``Match exec`` (invoke imported if it was hidden)."""
    import_paramiko()
    import paramiko.config

    if paramiko.config.invoke is None:  # type: ignore[attr-defined]
        try:
            import invoke
        except ImportError:
            pass  # paramiko then says so for a config that uses Match exec
        else:
            paramiko.config.invoke = invoke  # type: ignore[attr-defined]
    return paramiko.config
