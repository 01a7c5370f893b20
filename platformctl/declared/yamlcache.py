"""Parsed YAML kept between runs, keyed on the file's bytes (docs/design.md, "Parsed YAML cache").

PyYAML builds every document in Python, even with libyaml's parser: about 0.2 ms for a small
manifest, and a platform of 500 hosts has thousands. A run that finds a file's exact bytes
here takes the document from JSON instead, and does not import PyYAML at all when every file
is found. The file is still read, bounded and checked inside the root as before; only the
parse is skipped, so what a run sees is what parsing those bytes gives.

The cache is a SQLite file in the user's cache folder. It is only ever an optimisation: a
cache that cannot be opened, read or written is not used and the run parses, silently.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from platformctl import __version__
from platformctl.cachefile import CacheFile, keep_newest, open_cache

FILE_NAME = "parsed-yaml.db"
# Rows kept; beyond it the oldest written go (a content-keyed cache only grows as files change).
MAX_ENTRIES = 50_000
# Documents with more values than this are parsed every time rather than stored.
_MAX_NODES = 100_000
# Digests asked for in one query (SQLite before 3.32 takes at most 999 parameters).
_QUERY_SIZE = 500


class _Missing:
    """The marker :meth:`ParsedYamlCache.get` returns when the bytes are not cached."""


MISSING = _Missing()


class ParsedYamlCache:
    """Documents by SHA-256 of the bytes they were parsed from. Use :meth:`open`; call
    :meth:`close` to write what was added."""

    def __init__(self, file: CacheFile, parser: str) -> None:
        self._file: CacheFile | None = file
        self._parser = parser
        self._new: dict[bytes, str] = {}

    @classmethod
    def open(cls, folder: Path | None = None) -> ParsedYamlCache | None:
        """The cache in ``folder`` (default: the user's cache folder, see
        :mod:`platformctl.cachefile`), created if needed; None when it cannot be used."""
        parser = _parser_identity()
        file = open_cache(FILE_NAME, lambda db: _prepare(db, parser), folder)
        return None if file is None else cls(file, parser)

    def get(self, data: bytes) -> Any:
        """The document parsed from ``data``, or :data:`MISSING`."""
        return self.get_many((data,))[0]

    def get_many(self, datas: Sequence[bytes]) -> list[Any]:
        """The documents parsed from each of ``datas``, :data:`MISSING` for those not cached.
        One query for them all: a run reads its manifests a batch at a time, and a query per
        file, between the system calls that read the files, costs more than reading them
        (bench/README.md, "Where platformctl's CPU goes")."""
        if self._file is None:
            return [MISSING] * len(datas)
        digests = [hashlib.sha256(data).digest() for data in datas]
        texts = {digest: self._new[digest] for digest in digests if digest in self._new}
        wanted = list({digest for digest in digests if digest not in texts})
        if wanted:
            db = self._file.db
            try:
                if not db.in_transaction:
                    # One read transaction for the whole load: SQLite otherwise locks the file
                    # and checks it for changes around every query (a third of a lookup). The
                    # parser is checked again inside it: another run with another PyYAML may
                    # have emptied and relabelled the cache since it was opened.
                    db.execute("BEGIN")
                    if self._stored(db) != self._parser:
                        self._drop()
                        return [MISSING] * len(datas)
                for first in range(0, len(wanted), _QUERY_SIZE):
                    some = wanted[first : first + _QUERY_SIZE]
                    marks = ",".join("?" * len(some))  # placeholders only: no value in the text
                    query = f"SELECT digest, json FROM doc WHERE digest IN ({marks})"
                    texts.update(db.execute(query, some))
            except sqlite3.Error as exc:
                self._drop(exc)
                return [MISSING] * len(datas)
        return [_document(texts.get(digest)) for digest in digests]

    def add(self, data: bytes, document: Any) -> bool:
        """Remember ``document`` as what ``data`` parses to, when JSON holds it exactly (a
        timestamp, a set, binary or a non-string key would come back different: those files
        are parsed every time). True when it was kept."""
        if self._file is None or not _plain(document):
            return False
        try:
            text = json.dumps(document, allow_nan=False)
        except (ValueError, RecursionError):  # an integer longer than Python converts to
            return False  # text; nesting deeper than the interpreter's stack
        self._new[hashlib.sha256(data).digest()] = text
        return True

    def close(self) -> None:
        """Write the documents added, in one transaction, and keep the newest
        :data:`MAX_ENTRIES`."""
        file, self._file = self._file, None
        new, self._new = self._new, {}
        if file is None:
            return

        def write(db: sqlite3.Connection) -> None:
            # Written only under the parser they were parsed with (see get()).
            if self._stored(db) == self._parser:
                db.executemany("INSERT OR IGNORE INTO doc VALUES (?, ?)", new.items())
                keep_newest(db, "doc", MAX_ENTRIES)

        # A failure costs the documents added: the next run parses them again.
        file.close(write if new else None)

    @staticmethod
    def _stored(db: sqlite3.Connection) -> str | None:
        """The parser the cache's entries were made with."""
        row = db.execute("SELECT value FROM meta WHERE key = 'parser'").fetchone()
        return None if row is None else str(row[0])

    def _drop(self, exc: sqlite3.Error | None = None) -> None:
        """Stop using the cache (a damaged file is removed: the next run starts again)."""
        file, self._file = self._file, None
        if file is not None:
            if exc is None:
                file.close()
            else:
                file.failed(exc)


def _document(text: str | None) -> Any:
    """The document stored as ``text``, or :data:`MISSING`."""
    if text is None:
        return MISSING
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # a damaged row, or one too deep: parse the file
        return MISSING


def _prepare(db: sqlite3.Connection, parser: str) -> None:
    """Create the tables, or empty them when another parser or platformctl wrote them."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS doc (digest BLOB PRIMARY KEY, json TEXT NOT NULL)")
    if ParsedYamlCache._stored(db) != parser:
        with db:  # one transaction: never a new parser's name over an old parser's rows
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM doc")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('parser', ?)", (parser,))


def _parser_identity() -> str:
    """platformctl's version and the installed PyYAML's files, found as ``import yaml`` would
    find them but without importing it: another PyYAML may parse the same bytes differently."""
    from platformctl.declared.yamlfile import LOADER_REVISION

    parts = [__version__]
    for entry in sys.path:
        folder = os.path.join(entry or ".", "yaml")
        init = os.path.join(folder, "__init__.py")
        if not os.path.isfile(init):
            continue
        # libyaml's binding beside it decides which parser runs.
        binding = sorted(name for name in os.listdir(folder) if name.startswith("_yaml."))
        for location in (init, *(os.path.join(folder, name) for name in binding)):
            info = os.stat(location)
            parts.append(f"{location}:{info.st_size}:{info.st_mtime_ns}")
        break
    parts.append(f"loader {LOADER_REVISION}")  # what our loaders accept
    return "|".join(parts)


def _plain(document: Any) -> bool:
    """True when JSON gives ``document`` back equal and of the same types. Walks at most
    :data:`_MAX_NODES` values: YAML aliases can make a small file a huge tree."""
    stack = [document]
    budget = _MAX_NODES
    while stack:
        value = stack.pop()
        budget -= 1
        if budget < 0:
            return False
        if value is None or isinstance(value, str | bool | int):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                return False
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                return False
            stack.extend(value.values())
        else:
            return False
    return True
