"""known_hosts, parsed defensively and checked the way OpenSSH checks it.

paramiko's ``HostKeys.load()`` gives up on the whole file at the first ``@cert-authority`` or
``@revoked`` line (paramiko/paramiko#771) and ignores wildcard patterns. We parse the files once
per run, share the result between worker threads, honour ``@revoked``, hashed names and
wildcards, and append accepted keys ourselves under a lock (``accept-new``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class KeyCheck(StrEnum):
    """The verdict on a server's host key."""

    KNOWN = "known"
    UNKNOWN = "unknown"
    CHANGED = "changed"
    REVOKED = "revoked"


class KeyDecision(StrEnum):
    """What to do with a server's host key."""

    ACCEPT = "accept"
    RECORD = "record"
    """Accept and append to the first UserKnownHostsFile."""
    REFUSE = "refuse"


def host_key_decision(verdict: KeyCheck, strict: str) -> KeyDecision:
    """OpenSSH's ``StrictHostKeyChecking`` (``yes``, ``accept-new``, ``no``) applied to a
    verdict, in batch mode: ``ask`` counts as ``yes``. ``no`` connects despite a changed or
    even a ``@revoked`` key, as OpenSSH does (it then disables only password and
    keyboard-interactive authentication, which platformctl never uses)."""
    if verdict is KeyCheck.KNOWN:
        return KeyDecision.ACCEPT
    if verdict is KeyCheck.UNKNOWN and strict in ("accept-new", "no"):
        return KeyDecision.RECORD
    if verdict in (KeyCheck.CHANGED, KeyCheck.REVOKED) and strict == "no":
        return KeyDecision.ACCEPT
    return KeyDecision.REFUSE


@dataclass(frozen=True)
class _Entry:
    patterns: tuple[str, ...]
    key_type: str
    key_b64: str

    def matches(self, name: str) -> bool:
        name = name.lower()
        # A hashed name is the whole field, as OpenSSH reads it: never one of a list.
        if self.patterns[0].startswith("|1|"):
            return _hashed_match(self.patterns[0], name)
        positive = False
        for pattern in self.patterns:
            negate = pattern.startswith("!")
            pat = pattern[1:] if negate else pattern
            if _wildcard(pat.lower()).fullmatch(name):
                if negate:
                    return False
                positive = True
        return positive

    def literal(self) -> bool:
        """True when :meth:`matches` is plain equality with one of the patterns (lowercased):
        no hash, no negation, no wildcard."""
        return not any(p.startswith(("|1|", "!")) or "*" in p or "?" in p for p in self.patterns)


@functools.cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    """OpenSSH patterns know only ``*`` and ``?``; ``[host]:port`` brackets are literal.

    Cached per pattern: a known_hosts file of thousands of lines is checked once per host, and
    ``re``'s own cache holds only 512 patterns."""
    return re.compile(
        "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    )


def _hashed_match(pattern: str, name: str) -> bool:
    try:
        _, _, salt_b64, hash_b64 = pattern.split("|")
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), expected)


def _key_family(key_type: str) -> str:
    # A server's RSA key is offered as rsa-sha2-256/512 but stored as ssh-rsa.
    return "ssh-rsa" if key_type in ("rsa-sha2-256", "rsa-sha2-512") else key_type


class KnownHosts:
    """The entries of several known_hosts files; immutable but for :meth:`add`."""

    def __init__(self, files: tuple[str, ...] | list[str]) -> None:
        self.files = tuple(files)
        self._entries: list[_Entry] = []
        # Entries naming hosts literally, by name; the others (hashed, wildcards, negations)
        # are matched one by one. Every host of a run is looked up twice: without the index
        # that is a scan of the whole file each time (bench/README.md, 500 hosts).
        self._literal: dict[str, list[int]] = {}
        self._patterned: list[int] = []
        self._matches: dict[str, list[_Entry]] = {}
        self._revoked: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        for f in self.files:
            self._load(Path(f))

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        for line in text.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            marker = None
            if fields[0].startswith("@"):
                marker, fields = fields[0], fields[1:]
            if len(fields) < 3:
                continue
            patterns, key_type, key_b64 = fields[0], fields[1], fields[2]
            if marker == "@revoked":
                self._revoked.add((_key_family(key_type), key_b64))
                continue
            if marker is not None:
                continue  # @cert-authority: certificates are not supported; skip the line
            names = (patterns,) if patterns.startswith("|1|") else tuple(patterns.split(","))
            self._append(_Entry(names, key_type, key_b64))

    def _append(self, entry: _Entry) -> None:
        index = len(self._entries)
        self._entries.append(entry)
        self._matches.clear()
        if not entry.literal():
            self._patterned.append(index)
            return
        for pattern in entry.patterns:
            self._literal.setdefault(pattern.lower(), []).append(index)

    def _matching(self, name: str) -> list[_Entry]:
        """The entries that match ``name``, in file order (call under the lock)."""
        found = self._matches.get(name)
        if found is None:
            hits = set(self._literal.get(name.lower(), ()))
            hits.update(i for i in self._patterned if self._entries[i].matches(name))
            found = self._matches[name] = [self._entries[i] for i in sorted(hits)]
        return found

    def known_types(self, name: str) -> list[str]:
        """Key types recorded for ``name``, to prefer them in the key exchange."""
        with self._lock:
            return [e.key_type for e in self._matching(name)]

    def check(self, name: str, key_type: str, key_b64: str) -> KeyCheck:
        """Judge the key a server presented for ``name`` (``host`` or ``[host]:port``)."""
        family = _key_family(key_type)
        if (family, key_b64) in self._revoked:
            return KeyCheck.REVOKED
        with self._lock:
            matching = self._matching(name)
        if any(e.key_type == family and e.key_b64 == key_b64 for e in matching):
            return KeyCheck.KNOWN
        if any(e.key_type == family for e in matching):
            return KeyCheck.CHANGED
        return KeyCheck.UNKNOWN

    def add(self, name: str, key_type: str, key_b64: str, path: str, hashed: bool = False) -> None:
        """Append one entry (``accept-new``) to ``path`` and remember it, under a lock; with
        ``hashed`` (``HashKnownHosts yes``) the name is written hashed, as ssh writes it."""
        family = _key_family(key_type)
        with self._lock:
            if any(e.key_b64 == key_b64 for e in self._matching(name)):
                return
            pattern = _hash_name(name.lower()) if hashed else name
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(f"{pattern} {family} {key_b64}\n")
            self._append(_Entry((pattern,), family, key_b64))


def _hash_name(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
