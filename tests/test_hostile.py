"""Strings a host or a repository controls never reach the terminal raw.

A fake ``docker`` (through ``--docker-command``, on ``localhost``: no SSH needed) answers with
container names, images, states, versions and error messages full of ESC/OSC/CSI sequences, BEL,
C1 controls and newlines; a manifest carries the same in its name; a hostile sshd lists them as
its authentication methods. Every human-readable output must show them visibly escaped, and the
JSON and the store must keep the raw value.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Runner, write_module
from tests.test_local_bounds import local_module

HOSTILE = "evil\x1b]0;owned\x07\x1b[2J\x9b31m\nFORGED ROW OK"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\r")
IMAGE_ID = "sha256:" + "ab" * 32

FAKE_DOCKER = r'''#!/usr/bin/env python3
"""Answers the remote script's docker calls with hostile strings."""
import json, os, sys

hostile = os.environ["HOSTILE_NAME"]
args = sys.argv[1:]
if os.environ.get("HOSTILE_FAIL") and args[0] == "info":
    sys.stderr.write("Cannot connect: " + hostile + "\n")
    sys.exit(1)
if args[0] == "info":
    print(json.dumps({"version": "24.0" + hostile, "driver": "vfs\x07"}))
elif args[:2] == ["container", "ls"]:
    print("c" * 64)
elif args[:2] == ["container", "inspect"]:
    print(json.dumps({
        "image_id": "IMAGE_ID", "id": "c" * 64, "name": "/" + hostile,
        "created": None, "started": None,
        "status": "running\x1b[5m", "running": True,
        "image": "registry.test/org/web:1.1\x1b[31m",
        "project": None, "service": None, "oneoff": None, "number": None,
    }, separators=(",", ":")))
elif args[:2] == ["image", "inspect"]:
    print(json.dumps({"id": "IMAGE_ID", "tags": None, "digests": None}))
'''.replace("IMAGE_ID", IMAGE_ID)


def assert_clean(text: str) -> None:
    """No control character but the line breaks we print ourselves; no forged line."""
    for ch in RAW_CONTROLS:
        assert ch not in text, f"raw {ch!r} in output:\n{text!r}"
    for line in text.splitlines():
        assert not line.lstrip().startswith("FORGED"), f"a host forged a line: {line!r}"


@pytest.fixture
def fake_docker(tmp_path: Path) -> str:
    path = tmp_path / "fake-docker"
    path.write_text(FAKE_DOCKER)
    path.chmod(0o755)
    return str(path)


def platform(root: Path) -> Path:
    write_module(
        root,
        "web",
        {
            "host": "localhost",
            "orchestrator": "docker",
            "container": HOSTILE,
            "image_observed": "registry.test/org/web:1.0",
        },
        metadata={"name": "web" + HOSTILE},
    )
    return root


def test_drift_check_table_shows_host_strings_escaped(
    tmp_path: Path, run_cli: Runner, fake_docker: str
) -> None:
    root = platform(tmp_path / "p")
    env = {"HOSTILE_NAME": HOSTILE}
    args = ["--root", str(root), "--docker-command", fake_docker]
    table = run_cli("drift-check", *args, env=env)
    assert table.code == 2, table.err
    assert_clean(table.out + table.err)
    assert "\\x1b]0;owned\\x07" in table.out and "\\nFORGED ROW" in table.out
    assert "web:1.1\\x1b[31m" in table.out  # the LIVE cell
    # JSON escapes by itself and keeps the raw value.
    doc = json.loads(run_cli("drift-check", "--json", *args, env=env).out)
    assert doc["modules"][0]["live"][0]["container"] == HOSTILE
    assert doc["modules"][0]["module"] == "web" + HOSTILE
    # The store keeps the raw value too: sanitizing is the output's job.
    body = sqlite3.connect(tmp_path / "store.db").execute("SELECT body FROM host_states").fetchone()
    assert json.loads(body[0])["containers"][0]["name"] == HOSTILE


def test_snapshots_history_and_collect_show_host_strings_escaped(
    tmp_path: Path, run_cli: Runner, fake_docker: str
) -> None:
    root = platform(tmp_path / "p")
    env = {"HOSTILE_NAME": HOSTILE}
    args = ["--root", str(root), "--docker-command", fake_docker]
    run_cli("drift-check", *args, env=env)
    run_cli("drift-check", *args, env={"HOSTILE_NAME": HOSTILE + "2"})
    outputs = {
        "show": run_cli("snapshots", "show", "latest"),
        "diff": run_cli("snapshots", "diff", "1", "2"),
        "list": run_cli("snapshots", "list"),
        "history": run_cli("drift-history", "--root", str(root)),
    }
    for name, result in outputs.items():
        assert result.code == 0, (name, result.err)
        assert_clean(result.out + result.err)
    assert "\\x1b]0;owned" in outputs["show"].out and "24.0evil\\x1b" in outputs["show"].out
    assert "\\x1b]0;owned" in outputs["diff"].out
    assert "web" + "evil\\x1b" in outputs["history"].out
    failed = run_cli("collect", *args, env={**env, "HOSTILE_FAIL": "1"})
    assert failed.code == 8
    assert_clean(failed.err)
    assert "Cannot connect: evil" in failed.err  # the collector already flattens it


def test_warnings_and_errors_show_repository_strings_escaped(
    tmp_path: Path, run_cli: Runner
) -> None:
    root = tmp_path / "p"
    write_module(root, "good", {"host": "edge", "orchestrator": "external"})
    bad = root / "modules" / "bad" / "module.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        'metadata:\n  name: "bad\\e[2J\\a"\nspec:\n  runtime:\n    orchestrator: nomad\n'
    )
    result = run_cli("drift-check", "good", "--root", str(root))
    assert result.code == 0
    assert "warning: bad\\x1b[2J\\x07" in result.err
    assert_clean(result.err)
    unknown = run_cli("drift-check", "nope\x1b[2J", "--root", str(root))
    assert unknown.code == 1 and "\x1b" not in unknown.err


class _HostileServer(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "password,keyboard-interactive" + HOSTILE.replace(",", "")

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_FAILED


@pytest.fixture
def hostile_sshd() -> Iterator[int]:
    """An SSH server on loopback that lists hostile authentication methods."""
    key = paramiko.RSAKey.generate(1024)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            transport = paramiko.Transport(conn)
            transport.add_server_key(key)
            try:
                transport.start_server(server=_HostileServer())
                transport.accept(5)
            except Exception:
                pass
            finally:
                transport.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_hostile_sshd_reply_is_shown_escaped(
    tmp_path: Path, run_cli: Runner, hostile_sshd: int
) -> None:
    client_key = paramiko.RSAKey.generate(1024)
    key_path = tmp_path / "id_rsa"
    client_key.write_private_key_file(str(key_path))
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host evil\n  HostName 127.0.0.1\n  Port {hostile_sshd}\n  User root\n"
        f"  IdentityFile {key_path}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile {tmp_path / 'known_hosts'}\n  GlobalKnownHostsFile none\n"
    )
    result = run_cli(
        "collect",
        "--host",
        "evil",
        "--ssh-config",
        str(config),
        "--connect-timeout",
        "5",
        env={"SSH_AUTH_SOCK": ""},
    )
    assert result.code == 5, result.err
    assert "auth-failed" in result.err and "\\x1b]0;owned" in result.err
    assert_clean(result.err)


# What a terminal acts on: C0 and C1 controls, DEL, the Unicode line and paragraph separators
# and the bidirectional controls that reorder a line.
_ACTS_ON = set(
    "\u2028\u2029\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _acts_on(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _ACTS_ON


def _acts_on_any(text: str) -> bool:
    return any(_acts_on(ch) for ch in text)


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_no_text_reaches_a_table_with_a_character_the_terminal_acts_on(text: str) -> None:
    """What reaches a table is printable, and printable text reaches it as it is."""
    from platformctl.output.text import _INVISIBLE, clean

    shown = clean(text)
    assert not _acts_on_any(shown), repr(shown)
    assert shown.isprintable(), repr(shown)
    if text.isprintable() and "\\" not in text and _INVISIBLE.isdisjoint(text):
        assert shown == text


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(codec="utf-8")), st.text(alphabet="\\x1bnu0a\x1b\n"))
def test_two_texts_never_look_the_same(text: str, other: str) -> None:
    """A name written `api\\x1b` and one holding ESC read alike, and so became one metrics
    series: a drifting module's status was overwritten by the other's ok."""
    from platformctl.output.text import clean

    for a, b in ((text, other), (text, text + "\\"), (other, other.replace("\x1b", "\\x1b"))):
        if a != b:
            assert clean(a) != clean(b), (a, b)


@pytest.mark.parametrize(
    ("hidden", "shown"),
    [
        ("\u200b", "\\u200b"),  # zero-width space
        ("\ufeff", "\\ufeff"),  # zero-width no-break space (BOM)
        ("\u00ad", "\\xad"),  # soft hyphen
        ("\u2060", "\\u2060"),  # word joiner
        ("\U000e0041", "\\U000e0041"),  # tag letter A
        ("\u00a0", "\\xa0"),  # no-break space
        ("\u3164", "\\u3164"),  # Hangul filler: printable to Python, blank on screen
        ("\ufe0f", "\\ufe0f"),  # variation selector
        ("\u034f", "\\u034f"),  # combining grapheme joiner
        ("\U000e0100", "\\U000e0100"),  # variation selector supplement
        ("\u2800", "\\u2800"),  # blank Braille pattern
        ("\\x1b", "\\\\x1b"),  # an escape written out, not an ESC
    ],
)
def test_an_invisible_character_is_shown_so_two_names_never_look_the_same(
    hidden: str, shown: str
) -> None:
    from platformctl.output.text import clean

    assert clean(f"web{hidden}") == f"web{shown}" != clean("web")


def test_each_character_a_terminal_acts_on_is_shown_escaped() -> None:
    """Every such character, not only those a random text happens to hold: clean() passes
    printable text through untouched, so each of them must be one Python counts as not
    printable, and escaped."""
    from platformctl.output.text import clean

    acting = [chr(c) for c in range(0x110000) if _acts_on(chr(c))]
    assert [hex(ord(ch)) for ch in acting if ch.isprintable()] == []
    assert [hex(ord(ch)) for ch in acting if _acts_on_any(clean(f"a{ch}b"))] == []


def _info_stand_in(tmp_path: Path, info: str) -> Path:
    """A docker stand-in for an empty engine whose `docker info` prints ``info``."""
    path = tmp_path / "docker"
    path.write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        f"  'info --format') printf '%s\\n' '{info}' ;;\n"
        "  'container ls') ;;\n"
        "  *) exit 64 ;;\n"
        "esac\n"
    )
    path.chmod(0o755)
    return path


def test_a_docker_version_no_store_can_hold_is_kept_as_its_escape(
    tmp_path: Path, run_cli: Runner
) -> None:
    """A lone surrogate in `docker info` (JSON allows `\\ud800`, UTF-8 does not) made the
    save fail with a traceback: no host of the fleet was judged and nothing was stored."""
    docker = _info_stand_in(tmp_path, '{"version":"24.0\\ud800","driver":"overlay2"}')
    root = str(local_module(tmp_path / "p"))
    args = ("--root", root, "--docker-command", str(docker))
    result = run_cli("drift-check", "--json", *args)
    assert result.code == 2, result.err
    (host,) = result.json()["hosts"]
    assert (host["status"], host["docker_version"]) == ("ok", "24.0\\ud800")
    replay = run_cli("drift-check", "--json", "--snapshot", "latest", *args)
    assert replay.json()["hosts"][0]["docker_version"] == "24.0\\ud800"


def test_an_oversized_docker_version_is_a_host_error_not_a_row_of_megabytes(
    tmp_path: Path, run_cli: Runner
) -> None:
    """The version and driver are stored with every snapshot's row of the host."""
    docker = _info_stand_in(tmp_path, '{"version":"' + "9" * 5000 + '","driver":"overlay2"}')
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(local_module(tmp_path / "p")),
        "--docker-command",
        str(docker),
    )
    (host,) = result.json()["hosts"]
    assert (host["status"], host["reason"]) == (
        "error",
        "docker info printed an oversized 'version'",
    )
    assert len(result.out) < 5000


def test_documents_nested_a_thousand_deep_are_read_never_a_traceback(
    tmp_path: Path, run_cli: Runner
) -> None:
    """libyaml takes up to 1,000 levels; the parsed YAML cache's JSON and the compose
    reader's walk of the merge tags each overflowed the interpreter's stack below that."""
    root = tmp_path / "p"
    deep = "[" * 990 + "]" * 990
    write_module(root, "ok", {"host": "edge", "orchestrator": "external"})
    manifest = root / "modules" / "ok" / "module.yaml"
    manifest.write_text(manifest.read_text() + f"junk: {deep}\n")
    stack = root / "compose" / "apps"
    stack.mkdir(parents=True)
    (stack / "compose.yaml").write_text(f"x-junk: {deep}\nservices:\n  web:\n    image: nginx\n")
    for _ in range(2):  # the second run finds the documents in the cache
        result = run_cli("drift-check", "--root", str(root), "--db", str(tmp_path / "d"))
        assert result.code == 0, result.err
        assert "1 modules: 1 skipped" in result.out


def test_a_time_in_the_future_is_no_negative_duration() -> None:
    """A snapshot from a clock running ahead showed SINCE as `-96767027s`."""
    from platformctl.output.text import duration

    assert [duration(s) for s in (-96_767_027, -1, 0, 59, 61)] == ["0s", "0s", "0s", "59s", "1m"]
