"""A regular (non-editable) install of this checkout in its own venv, as users install it.

The development venv's editable install adds an import hook to every start-up, and this
machine's environment sets PYTHONDONTWRITEBYTECODE, which makes every run compile the
package from source: neither is what a user's ``pipx install`` runs. The benchmarks time
the installed console script, in an environment without PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = Path("/tmp/platformctl-bench-venv")


def installed(folder: Path = DEFAULT) -> Path:
    """The venv's ``bin`` folder, after (re)installing this checkout into it."""
    python = folder / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if python.exists():  # dependencies in place: replace only platformctl, same version or not
        subprocess.run([*pip, "--force-reinstall", "--no-deps", str(REPO)], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([*pip, str(REPO)], check=True)
    return folder / "bin"


def user_env() -> dict[str, str]:
    """This environment without what a user's would not have."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_installed(python: str, args: list[str], cache: Path) -> subprocess.CompletedProcess[bytes]:
    """``python ARGS`` as a user's scheduled run: their environment, platformctl's caches in
    ``cache``, stdout dropped and stderr kept. From ``/``: ``python -m`` and ``-c`` put the
    working folder first on sys.path, where a checkout would shadow the install under test."""
    return subprocess.run(
        [python, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**user_env(), "XDG_CACHE_HOME": str(cache)},
        cwd="/",
    )
