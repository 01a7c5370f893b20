"""``ssh -G`` answers kept between runs (docs/design.md, "ssh -G answers").

Each host costs one ``ssh -G``: about 13 ms of CPU in a child process, more than a third of
what a host costs a fleet run. What ``ssh -G`` prints is a function of the ssh client, its
command line, the config files it reads and a few facts about the user and the machine,
unless the config asks for something outside those (``Match exec``, ``Match localnetwork``,
canonicalization through DNS). This module walks the config files as ssh does, only far
enough to know that, and reduces all of it to one key: the state of everything the answer
depends on. A config it cannot account for exactly is not cached, and ``ssh -G`` runs for every
host as before.

An answer is stored only when ``ssh -v -G`` itself reported reading exactly the files the
walk found, in the same order, and when the walk, repeated at the end of the run, finds the
same state. A file changed, added to an ``Include`` folder, removed, or given other owner or
permission bits, gives another key: the next run asks ssh again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import re
import socket
import sqlite3
import stat
import threading
from pathlib import Path

from platformctl.cachefile import open_cache

FILE_NAME = "ssh-g.db"
# Rows kept; beyond it the oldest written go (each config state has one row per alias).
MAX_ENTRIES = 20_000
# Where OpenSSH's system-wide config lives on the systems we run on; a client built with
# another place reads another file, which the check against ``ssh -v`` catches.
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
SYSTEM_DIR = "/etc/ssh"
MAX_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
MAX_FILES = 256
MAX_FILE_BYTES = 1 << 20
_FORMAT = 1  # of the key: raised when what goes into it changes

# Match criteria whose outcome follows from the alias, the -l user and the local user alone.
_MATCH_WITH_ARGUMENT = frozenset({"host", "originalhost", "user", "localuser"})
_READING = "debug1: Reading configuration data "
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# ssh splits a keyword off at white space, "=" or a quote: the walk takes the first run of
# letters after any of those, and refuses a watched keyword written with anything unusual.
_KEYWORD = re.compile(r"[ \t\r\n=\"']*([A-Za-z]*)")
_PLAIN_LINE = re.compile(r"[ -~\t]*")
# Keywords whose lines the walk must understand; any other line cannot change what the
# answer depends on.
_WATCHED = frozenset({"include", "match", "canonicalizehostname"})


class Uncacheable(Exception):
    """The config asks for something beyond the key (a shell, the network, DNS) or is written
    in a way this walk does not follow exactly."""


def config_state(ssh: str, config: Path | None) -> tuple[bytes, tuple[str, ...]]:
    """The key of everything ``ssh -G [-F config]`` depends on, and the config files it
    reads, in order and named as ``ssh -v`` names them. Raises :class:`Uncacheable`."""
    try:
        account = pwd.getpwuid(os.getuid())
        binary = os.path.realpath(ssh)
        info = os.stat(binary)
    except (KeyError, OSError) as exc:
        raise Uncacheable(str(exc)) from None
    walk = _Walk(account.pw_dir)
    if config is not None:
        walk.root(str(config), user=True)
    else:
        walk.root(f"{account.pw_dir}/.ssh/config", user=True)
        walk.root(SYSTEM_CONFIG, user=False)
    facts = [
        _FORMAT,
        [binary, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns],
        [os.getuid(), os.getgid(), account.pw_name, account.pw_dir],
        socket.gethostname(),  # %l and %L
        # Include's glob expands "~" from $HOME and sorts names by the collation locale.
        [os.environ.get(name) for name in ("HOME", "LC_ALL", "LC_COLLATE", "LANG")],
        sorted((name, os.environ.get(name)) for name in walk.env_names),
        walk.parts,
    ]
    key = hashlib.sha256(json.dumps(facts).encode("utf-8", "surrogateescape")).digest()
    return key, tuple(walk.files)


class _Walk:
    """The files ssh reads for a config, and what in them decides the answer."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.files: list[str] = []
        self.parts: list[object] = []
        self.env_names: set[str] = set()

    def root(self, path: str, user: bool) -> None:
        if not os.path.lexists(path):
            self.parts.append(["absent", path])
            return
        self.read(path, user, 0)

    def read(self, path: str, user: bool, depth: int) -> None:
        if depth > MAX_DEPTH or len(self.files) >= MAX_FILES:
            raise Uncacheable("too many or too deeply included files")
        try:
            with open(path, "rb") as fh:
                info = os.fstat(fh.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                    raise Uncacheable(f"{path}: not a regular file, or too large")
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise Uncacheable(f"{path}: {exc.strerror}") from None
        if len(data) > MAX_FILE_BYTES:
            raise Uncacheable(f"{path}: too large")
        self.files.append(path)
        # Owner and permission bits: ssh refuses a user config others may write to.
        digest = hashlib.sha256(data).hexdigest()
        self.parts.append(["file", path, info.st_uid, stat.S_IMODE(info.st_mode), digest])
        text = data.decode("utf-8", "surrogateescape")
        if "${" in text:
            names = _ENV_REFERENCE.findall(text)
            if len(names) != text.count("${"):
                raise Uncacheable(f"{path}: an environment reference this walk cannot read")
            self.env_names.update(names)
        for line in text.split("\n"):
            self.line(line.rstrip(" \t\r\f"), user, depth)

    def line(self, line: str, user: bool, depth: int) -> None:
        found = _KEYWORD.match(line)
        assert found is not None  # the pattern matches any text
        keyword = found.group(1).lower()
        if keyword not in _WATCHED:
            return
        rest = line[found.end() :]
        # Quotes, escapes, comments and anything beyond printable ASCII are where this walk
        # and ssh's own tokenizer could part ways.
        if (
            line[: found.start(1)].strip(" \t")
            or (rest and rest[0] not in " \t=")
            or not _PLAIN_LINE.fullmatch(rest)
            or any(c in rest for c in "\"'\\#")
        ):
            raise Uncacheable(f"{keyword} written in a way this walk does not follow")
        rest = rest.strip(" \t").removeprefix("=")
        args = rest.split()
        if keyword == "canonicalizehostname":
            if [a.lower() for a in args] not in (["no"], ["false"]):
                raise Uncacheable("CanonicalizeHostname asks DNS")
        elif keyword == "match":
            _check_match(args)
        else:
            for arg in args:
                self.include(arg, user, depth)

    def include(self, arg: str, user: bool, depth: int) -> None:
        # Only the wildcards glob(3) and Python's glob read alike; no tokens or variables.
        if any(c in arg for c in "%$[]{}"):
            raise Uncacheable(f"Include {arg}")
        if arg.startswith("~"):
            if not user or not arg.startswith("~/"):
                raise Uncacheable(f"Include {arg}")
            # glob(3)'s GLOB_TILDE: $HOME when set and not empty, else the password database.
            path = (os.environ.get("HOME") or self.home) + arg[1:]
        elif arg.startswith("/"):
            path = arg
        elif user:
            path = f"{os.environ.get('HOME') or self.home}/.ssh/{arg}"
        else:
            path = f"{SYSTEM_DIR}/{arg}"
        # The files found are in the key through read(): one added or removed changes it.
        for match in sorted(glob.glob(path)):
            self.read(match, user, depth + 1)


def _check_match(args: list[str]) -> None:
    """Raise :class:`Uncacheable` unless every criterion is one of
    :data:`_MATCH_WITH_ARGUMENT` or ``all``."""
    index = 0
    while index < len(args):
        criterion = args[index].lower().removeprefix("!")
        if criterion == "all":
            index += 1
        elif criterion in _MATCH_WITH_ARGUMENT and index + 1 < len(args):
            index += 2
        else:
            raise Uncacheable(f"Match {criterion}")


def files_read(stderr: bytes) -> tuple[str, ...]:
    """The config files ``ssh -v`` says it read, in order."""
    text = stderr.decode("utf-8", "surrogateescape")
    return tuple(line[len(_READING) :] for line in text.splitlines() if line.startswith(_READING))


class SshGCache:
    """``ssh -G`` output by config state and command line. Use :meth:`open`; call
    :meth:`close` to write what was added. Safe to use from many threads."""

    def __init__(
        self,
        db: sqlite3.Connection,
        ssh: str,
        config: Path | None,
        state: bytes,
        files: tuple[str, ...],
    ) -> None:
        self._db: sqlite3.Connection | None = db
        self._ssh = ssh
        self._config = config
        self.state = state
        self.files: tuple[str, ...] = files
        self._known: dict[str, str] = {}
        self._new: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, ssh: str, config: Path | None, folder: Path | None = None) -> SshGCache | None:
        """The answers stored for the current state of ``ssh``'s config; None when the config
        cannot be cached or the cache cannot be used."""
        try:
            state, files = config_state(ssh, config)
        except Uncacheable:
            return None
        db = open_cache(FILE_NAME, _prepare, folder)
        if db is None:
            return None
        cache = cls(db, ssh, config, state, files)
        try:
            rows = db.execute("SELECT argv, output FROM answer WHERE state = ?", (state,))
            cache._known = dict(rows.fetchall())
        except sqlite3.Error:
            db.close()
            return None
        return cache

    def get(self, argv: list[str]) -> str | None:
        """What ``ssh -G`` printed for ``argv`` in this config state, or None."""
        return self._known.get(_argv_key(argv))

    def add(self, argv: list[str], output: str, stderr: bytes) -> None:
        """Remember ``output`` for ``argv`` when ``stderr`` (of ``ssh -v -G``) names exactly the
        files the walk found."""
        if files_read(stderr) == self.files:
            with self._lock:
                self._new[_argv_key(argv)] = output

    def close(self) -> None:
        """Write the answers added, in one transaction, if the config is still in the state
        it was in when the cache was opened; keep the newest :data:`MAX_ENTRIES`."""
        with self._lock:
            db, self._db = self._db, None
            new, self._new = self._new, {}
        if db is None:
            return
        try:
            if not new:
                return
            try:
                unchanged = config_state(self._ssh, self._config)[0] == self.state
            except Uncacheable:
                unchanged = False
            if not unchanged:  # edited during the run: which answer goes with which state?
                return
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "INSERT OR REPLACE INTO answer (state, argv, output) VALUES (?, ?, ?)",
                    [(self.state, argv, output) for argv, output in new.items()],
                )
                db.execute(
                    "DELETE FROM answer WHERE rowid <= (SELECT max(rowid) FROM answer) - ?",
                    (MAX_ENTRIES,),
                )
        except sqlite3.Error:
            pass  # another run holds the cache, or the disk is full: the next run asks ssh
        finally:
            db.close()


def _prepare(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS answer (state BLOB NOT NULL, argv TEXT NOT NULL, "
        "output TEXT NOT NULL, PRIMARY KEY (state, argv))"
    )


def _argv_key(argv: list[str]) -> str:
    return json.dumps(argv)
