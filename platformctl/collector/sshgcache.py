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
same state, down to the files' and folders' inodes and timestamps. A file changed, added to an
``Include`` folder, removed, or given other owner or permission bits, gives another key: the
next run asks ssh again.
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
from dataclasses import dataclass
from pathlib import Path

from platformctl.cachefile import CacheFile, keep_newest, open_cache

FILE_NAME = "ssh-g.db"
# Rows kept (an answer is 1-2 KB); beyond it the oldest written go: each config state has one
# row per alias, and an edit of the config starts a new state.
MAX_ENTRIES = 10_000
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
# answer depends on. With canonicalization, or CNAMEs it may follow, ssh -G asks DNS.
_NO_DNS = {"canonicalizehostname": (["no"], ["false"]), "canonicalizepermittedcnames": (["none"],)}
_WATCHED = frozenset({"include", "match", *_NO_DNS})
_OTHER_HOME = re.compile(r"(?:^|[ \t=\"'])~[^/ \t\r\n\"']")


class Uncacheable(Exception):
    """The config asks for something beyond the key (a shell, the network, DNS) or is written
    in a way this walk does not follow exactly."""


@dataclass(frozen=True)
class ConfigState:
    """What ``ssh -G [-F config]``'s answers depend on, as found by one walk."""

    key: bytes
    """SHA-256 of the client, the user and the files' contents: the cache's key."""
    files: tuple[str, ...]
    """The config files ssh reads, in order, named as ``ssh -v`` names them."""
    changes: bytes
    """SHA-256 of the inodes and timestamps of the files and of every symbolic link on their
    paths, and of the folders an ``Include`` looked in: a config changed and changed back since
    the walk has the same key, but other ``changes`` (docs/design.md, "ssh -G answers", says
    what is not seen)."""


def config_state(ssh: str, config: Path | None) -> ConfigState:
    """Walk the config ``ssh`` reads. Raises :class:`Uncacheable`."""
    try:
        account = pwd.getpwuid(os.getuid())
        binary = os.path.realpath(ssh)
        with open(binary, "rb") as fh:
            info = os.fstat(fh.fileno())
            # A script in front of the client may do anything (add options, pick a client).
            if fh.read(4) != b"\x7fELF":
                raise Uncacheable(f"{binary} is not the ssh client itself")
    except (KeyError, OSError) as exc:
        raise Uncacheable(str(exc)) from None
    walk = _Walk(account.pw_dir)
    # ssh checks the owner and mode of its default user config and of included files, not of
    # a -F file or the system config.
    if config is not None:
        walk.root(str(config), user=True, checked=False)
    else:
        walk.root(f"{account.pw_dir}/.ssh/config", user=True, checked=True)
        walk.root(SYSTEM_CONFIG, user=False, checked=False)
    facts = [
        _FORMAT,
        [binary, *_stamp(info)],
        [os.getuid(), os.getgid(), account.pw_name, account.pw_dir],
        socket.gethostname(),  # %l and %L
        walk.glob_home,
        sorted((name, os.environ.get(name)) for name in walk.env_names),
        walk.parts,
    ]
    return ConfigState(_digest(facts), tuple(walk.files), _digest(walk.changes))


def _digest(value: object) -> bytes:
    return hashlib.sha256(json.dumps(value).encode("utf-8", "surrogateescape")).digest()


class _Walk:
    """The files ssh reads for a config, and what in them decides the answer."""

    def __init__(self, home: str) -> None:
        # ssh's Include uses its bundled glob (openbsd-compat/glob.c), not the C library's: "~"
        # is $HOME whenever HOME is set, even empty, else the password database's home; names
        # are sorted by strcmp, as Python sorts them.
        self.glob_home = os.environ.get("HOME", home)
        self.files: list[str] = []
        self.parts: list[object] = []
        self.changes: list[object] = []
        self.env_names: set[str] = set()

    def root(self, path: str, user: bool, checked: bool) -> None:
        if not os.path.lexists(path):
            self.parts.append(["absent", path])
            self.changes.append(_folder_stamp(path))
            return
        self.read(path, user, 0, checked)

    def read(self, path: str, user: bool, depth: int, checked: bool = True) -> None:
        if depth > MAX_DEPTH or len(self.files) >= MAX_FILES:
            raise Uncacheable("too many or too deeply included files")
        try:
            # O_NONBLOCK: a FIFO must not hang the run; it is refused below.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise Uncacheable(f"{path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                raise Uncacheable(f"{path}: not a regular file, or too large")
            # Writable by group or others, where ssh checks: Debian's ssh accepts such a file
            # when the group has the owner alone as member, which the key cannot follow.
            if checked and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise Uncacheable(f"{path}: writable by others than its owner")
            try:
                data = fh.read(MAX_FILE_BYTES + 1)
            except OSError as exc:
                raise Uncacheable(f"{path}: {exc.strerror}") from None
        if len(data) > MAX_FILE_BYTES:
            raise Uncacheable(f"{path}: too large")
        self.files.append(path)
        # Owner and permission bits: ssh refuses an included file others may write to.
        digest = hashlib.sha256(data).hexdigest()
        self.parts.append(["file", path, info.st_uid, stat.S_IMODE(info.st_mode), digest])
        self.changes.append([path, _stamp(info), _links(path)])
        text = data.decode("utf-8", "surrogateescape")
        if "${" in text:
            names = _ENV_REFERENCE.findall(text)
            if len(names) != text.count("${"):
                raise Uncacheable(f"{path}: an environment reference this walk cannot read")
            self.env_names.update(names)
        for line in text.split("\n"):
            self.line(line.rstrip(" \t\r\f"), user, depth)

    def line(self, line: str, user: bool, depth: int) -> None:
        # "~name" in a value is that user's home, from a password database entry not in the key.
        if _OTHER_HOME.search(line) and not line.lstrip(" \t").startswith("#"):
            raise Uncacheable(f"another user's home (~name): {line!r}")
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
        if keyword == "include":  # its arguments are split at white space only
            for arg in args:
                self.include(arg, user, depth)
        elif "=" in rest:  # ssh splits other arguments at "=" too
            raise Uncacheable(f"{keyword} with '=' among its arguments")
        elif keyword == "match":
            _check_match(args)
        elif [a.lower() for a in args] not in _NO_DNS[keyword]:
            raise Uncacheable(f"{keyword} asks DNS")

    def include(self, arg: str, user: bool, depth: int) -> None:
        # Only the wildcards every glob reads alike, in the last component; no tokens or
        # variables.
        if any(c in arg for c in "%$[]{}"):
            raise Uncacheable(f"Include {arg}")
        if arg.startswith("~"):
            if not user or not arg.startswith("~/"):
                raise Uncacheable(f"Include {arg}")
            path = self.glob_home + arg[1:]
        elif arg.startswith("/"):
            path = arg
        elif user:
            path = f"{self.glob_home}/.ssh/{arg}"
        else:
            path = f"{SYSTEM_DIR}/{arg}"
        folder = os.path.dirname(path)
        if any(c in folder for c in "*?"):
            raise Uncacheable(f"Include {arg}: a wildcard in a folder name")
        # The folder's timestamps change when a file is added or removed.
        self.changes.append(_folder_stamp(path))
        # The files found are in the key through read(): one added or removed changes it.
        for match in sorted(glob.glob(path)):
            self.read(match, user, depth + 1)


def _stamp(info: os.stat_result) -> list[int]:
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def _folder_stamp(path: str) -> list[object]:
    """The timestamps of the nearest existing folder above ``path``: any file created or
    removed in it, or a missing folder created below it, changes them."""
    folder = os.path.dirname(path) or "."
    while True:
        try:
            return [folder, _stamp(os.stat(folder))]
        except OSError:
            parent = os.path.dirname(folder) or "."
            if parent == folder:
                return [folder, None]
            folder = parent


def _links(path: str) -> list[object]:
    """Each symbolic link met while resolving ``path``, with its inode, timestamps and target:
    a link pointed elsewhere and back is a new link (or has a new change time), while the
    file or folder it leads to may be untouched."""
    met: list[object] = []
    pending = [part for part in reversed(path.split("/")) if part]
    current = "/" if path.startswith("/") else "."
    hops = 0
    while pending:
        part = pending.pop()
        candidate = os.path.join(current, part)
        try:
            info = os.lstat(candidate)
        except OSError:
            break  # what is missing is what it is: the walk records the absence
        if not stat.S_ISLNK(info.st_mode):
            current = candidate
            continue
        hops += 1
        if hops > 40:  # a loop: the walk itself fails on it
            break
        try:
            target = os.readlink(candidate)
        except OSError:
            break
        met.append([candidate, _stamp(info), target])
        if target.startswith("/"):
            current = "/"
        pending.extend(part for part in reversed(target.split("/")) if part)
    return met


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
        file: CacheFile,
        ssh: str,
        config: Path | None,
        state: ConfigState,
        known: dict[str, str],
    ) -> None:
        self._file: CacheFile | None = file
        self._ssh = ssh
        self._config = config
        self.state = state
        self._known = known
        self._new: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, ssh: str, config: Path | None, folder: Path | None = None) -> SshGCache | None:
        """The answers stored for the current state of ``ssh``'s config; None when the config
        cannot be cached or the cache cannot be used."""
        try:
            state = config_state(ssh, config)
        except Uncacheable:
            return None
        known: dict[str, str] = {}

        def prepare(db: sqlite3.Connection) -> None:
            # Read while the file is opened: a damaged one is then started again.
            db.execute(
                "CREATE TABLE IF NOT EXISTS answer (state BLOB NOT NULL, argv TEXT NOT NULL, "
                "output TEXT NOT NULL, PRIMARY KEY (state, argv))"
            )
            rows = db.execute("SELECT argv, output FROM answer WHERE state = ?", (state.key,))
            known.update(rows.fetchall())

        file = open_cache(FILE_NAME, prepare, folder)
        if file is None:
            return None
        return cls(file, ssh, config, state, known)

    def get(self, argv: list[str]) -> str | None:
        """What ``ssh -G`` printed for ``argv`` in this config state, or None."""
        return self._known.get(_argv_key(argv))

    def add(self, argv: list[str], output: str, stderr: bytes) -> None:
        """Remember ``output`` (of ``ssh -v -G``: only its ``loglevel`` line differs, which is
        not read) for ``argv`` when ``stderr`` names exactly the files the walk found."""
        if files_read(stderr) == self.state.files:
            with self._lock:
                self._new[_argv_key(argv)] = output

    def close(self) -> None:
        """Write the answers added, in one transaction, if the config files and their folders
        are as they were when the cache was opened; keep the newest :data:`MAX_ENTRIES`."""
        with self._lock:
            file, self._file = self._file, None
            new, self._new = self._new, {}
        if file is None:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR REPLACE INTO answer (state, argv, output) VALUES (?, ?, ?)",
                [(self.state.key, argv, output) for argv, output in new.items()],
            )
            keep_newest(db, "answer", MAX_ENTRIES)

        # A failure costs the answers added: the next run asks ssh again.
        file.close(write if new and self._unchanged() else None)

    def _unchanged(self) -> bool:
        """True when a walk now finds what the walk at :meth:`open` found, down to inodes and
        timestamps: a file edited during the run, even back to its old bytes, makes it False,
        since an answer may then come from either version."""
        try:
            return config_state(self._ssh, self._config) == self.state
        except Uncacheable:
            return False


def _argv_key(argv: list[str]) -> str:
    return json.dumps(argv)
