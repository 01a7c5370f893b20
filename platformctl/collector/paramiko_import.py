"""Import paramiko without invoke.

paramiko (3.2 and later) imports invoke when it starts, only so that its own ``SSHConfig`` can
run ``Match exec``; invoke in turn imports asyncio, ssl and unittest.mock. That is about half of
paramiko's import time, spent before a run's first packet can leave (bench/README.md). Our
ssh config resolution is OpenSSH's ``ssh -G``; only the fallback resolver uses paramiko's
``SSHConfig``, and it puts invoke back (:func:`with_match_exec`).

paramiko.config already treats a missing invoke as "Match exec unavailable" and raises only
when a config uses it, so hiding invoke while paramiko imports changes nothing else.

paramiko (4 and later) also reads its own version at import with ``importlib.metadata``, whose
import (email, zipfile, csv...) costs about as much again as the lookup it serves. While
paramiko imports, ``importlib.metadata`` is a stand-in that answers ``version("paramiko")``
from paramiko's own ``.dist-info`` (the same file importlib.metadata reads) and hands anything
else to the real module. paramiko sends that version in its SSH banner.
"""

from __future__ import annotations

import os
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
        stand_in = None if "importlib.metadata" in sys.modules else _metadata_stand_in()
        if stand_in is not None:
            sys.modules["importlib.metadata"] = stand_in
        try:
            import paramiko  # noqa: F401
        finally:
            if sys.modules.get("invoke", ...) is None:
                del sys.modules["invoke"]
            if stand_in is not None and sys.modules.get("importlib.metadata") is stand_in:
                del sys.modules["importlib.metadata"]


def _metadata_stand_in() -> ModuleType | None:
    """A module answering ``version("paramiko")`` as ``importlib.metadata`` would, without
    importing it; None when paramiko's metadata is not a plain ``.dist-info`` (then the real
    module answers)."""
    version = _dist_info_version("paramiko")
    if version is None:
        return None
    module = ModuleType("importlib.metadata", "paramiko's version, importlib.metadata deferred")

    def real() -> ModuleType:
        if sys.modules.get("importlib.metadata") is module:
            del sys.modules["importlib.metadata"]
        import importlib.metadata

        return importlib.metadata

    def version_of(name: str) -> str:
        return version if name == "paramiko" else str(real().version(name))

    module.version = version_of  # type: ignore[attr-defined]
    module.__getattr__ = lambda attribute: getattr(real(), attribute)  # type: ignore[method-assign]
    return module


def _dist_info_version(project: str) -> str | None:
    """The ``Version`` of ``project``'s ``.dist-info`` in the first ``sys.path`` folder that
    holds metadata of it, as ``importlib.metadata.version`` finds it; None for anything less
    plain (an archive on the path, an ``.egg-info``, two candidates)."""
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return None  # a zip archive: importlib.metadata would look inside
            continue
        try:
            names = os.listdir(folder)
        except OSError:  # unreadable: importlib.metadata passes it over, and so may answer
            return None
        found = [
            name
            for name in names
            if name.lower().startswith(f"{project}-") or name.lower().startswith(f"{project}.")
            if name.lower().endswith((".dist-info", ".egg-info"))
        ]
        if not found:
            continue
        if len(found) != 1 or not found[0].endswith(".dist-info"):
            return None
        try:
            with open(os.path.join(folder, found[0], "METADATA"), encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        break
                    key, _, value = line.partition(":")
                    if key == "Version":
                        return value.strip() or None
        except OSError:
            return None
        return None
    return None


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
