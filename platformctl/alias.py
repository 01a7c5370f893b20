"""The shape every host alias must have, wherever it comes from (a manifest, ``--host``).

A user's ssh config may hand the alias to a shell (``Match exec`` with ``%h``), and nothing
from a manifest or the command line may reach a shell: so an alias is letters, digits and
``. - _ :`` only, starting with a letter, digit or underscore.
"""

from __future__ import annotations

import re

# \Z, not $: `$` also matches before a final newline, which would let "edge\n" through.
ALIAS_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*\Z")
