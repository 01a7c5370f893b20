"""Run platformctl as ``python -m platformctl``."""

from platformctl.cli import console

console()
