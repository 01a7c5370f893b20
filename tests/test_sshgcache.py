"""ssh -G answers kept between runs: a run whose ssh config is unchanged does not ask ssh
again, and any change that could change ssh's answer makes the next run ask.

Every test resolves through the real OpenSSH client, counting its runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platformctl.collector import sshgcache
from platformctl.collector.connector import CollectOptions, Connector, make_resolver
from platformctl.collector.openssh import OpenSshResolver, SshConfigError
from platformctl.collector.sshconfig import SshTarget
from platformctl.collector.sshgcache import FILE_NAME, SshGCache
from tests.conftest import IN_CI

REAL_SSH = shutil.which("ssh")


@dataclass
class CountedSsh:
    """The real ``ssh`` on PATH, with each of its runs counted."""

    calls: list[list[str]]

    @property
    def runs(self) -> int:
        return len(self.calls)


@pytest.fixture
def ssh(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountedSsh]:
    if REAL_SSH is None:
        if IN_CI:
            pytest.fail("in CI: no ssh client installed")
        pytest.skip("no ssh client installed")
    counted = CountedSsh([])
    real_run = subprocess.run

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if os.path.basename(args[0]) == "ssh" and "-G" in args:
            counted.calls.append(list(args))
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    yield counted


def resolve(config: Path, alias: str = "web", **overrides: object) -> SshTarget:
    """One run's resolution of ``alias``, as drift-check makes it: the resolver is closed at
    the end of the run, which writes the cache."""
    resolver = make_resolver(str(config), 10.0, pytest.fail)
    try:
        return resolver.lookup(alias, **overrides)  # type: ignore[arg-type]
    finally:
        resolver.close()


def test_the_next_run_takes_the_answer_without_running_ssh(tmp_path: Path, ssh: CountedSsh) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n  Port 2222\n  User deploy\n")
    first = resolve(config)
    assert ssh.runs == 1
    second = resolve(config)
    assert ssh.runs == 1
    assert second == first
    assert (second.hostname, second.port, second.user) == ("10.0.0.5", 2222, "deploy")
    # Another alias, or the same one with -l/-p/-J overrides, is another question.
    assert resolve(config, "db").hostname == "db"
    assert resolve(config, user="root", port=22, jump="hop").user == "root"
    assert ssh.runs == 3


def test_a_run_keeps_its_answers_when_it_closes_its_connections(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    """The wiring of a real run: the connector's close writes the resolver's new answers."""
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    for _ in range(2):
        connector = Connector(CollectOptions(ssh_config=str(config)))
        assert connector.settings.resolver.lookup("web").hostname == "10.0.0.5"
        connector.close()
    assert ssh.runs == 1


def test_an_edit_that_keeps_size_and_timestamps_is_seen(tmp_path: Path, ssh: CountedSsh) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    stamp = config.stat()
    assert resolve(config).hostname == "10.0.0.5"
    config.write_text("Host web\n  HostName 10.0.0.6\n")
    os.utime(config, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert resolve(config).hostname == "10.0.0.6"
    assert ssh.runs == 2


def test_files_added_to_and_removed_from_an_include_folder_are_seen(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    config = tmp_path / "config"
    config.write_text(f"Include {folder}/*.conf\nHost web\n  HostName 10.0.0.5\n")
    assert resolve(config).user != "deploy"
    (folder / "users.conf").write_text("Host web\n  User deploy\n")
    assert resolve(config).user == "deploy"
    assert resolve(config).user == "deploy"
    assert ssh.runs == 2
    (folder / "users.conf").unlink()
    assert resolve(config).user != "deploy"
    # A nested include, edited: the files ssh reads are followed to any depth.
    (folder / "a.conf").write_text(f"Include {tmp_path}/deeper\n")
    (tmp_path / "deeper").write_text("Host web\n  Port 2201\n")
    assert resolve(config).port == 2201
    (tmp_path / "deeper").write_text("Host web\n  Port 2202\n")
    assert resolve(config).port == 2202


def test_an_included_file_others_may_write_is_refused_by_ssh_on_the_next_run(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    included = tmp_path / "hosts.conf"
    included.write_text("Host web\n  HostName 10.0.0.5\n")
    included.chmod(0o600)
    config = tmp_path / "config"
    config.write_text(f"Include {included}\n")
    assert resolve(config).hostname == "10.0.0.5"
    included.chmod(0o666)  # ssh checks owner and mode of included files
    with pytest.raises(SshConfigError, match="[Bb]ad owner or permissions"):
        resolve(config)


def test_an_environment_variable_the_config_names_is_part_of_the_answer(
    tmp_path: Path, ssh: CountedSsh, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  IdentityAgent ${AGENT_DIR}/agent.sock\n")
    monkeypatch.setenv("AGENT_DIR", "/run/one")
    assert resolve(config).identity_agent == "/run/one/agent.sock"
    monkeypatch.setenv("AGENT_DIR", "/run/two")
    assert resolve(config).identity_agent == "/run/two/agent.sock"
    # Variables the config does not name do not matter.
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    assert resolve(config).identity_agent == "/run/two/agent.sock"
    assert ssh.runs == 2


def test_a_match_exec_runs_on_every_run(tmp_path: Path, ssh: CountedSsh) -> None:
    flag = tmp_path / "flag"
    script = tmp_path / "flagged"
    script.write_text(f"#!/bin/sh\ntest -e {flag}\n")
    script.chmod(0o755)
    config = tmp_path / "config"
    config.write_text(f"Match host web exec {script}\n  Port 2201\nHost web\n  Port 2202\n")
    assert resolve(config).port == 2202
    flag.touch()
    assert resolve(config).port == 2201
    assert resolve(config).port == 2201
    assert ssh.runs == 3


@pytest.mark.parametrize(
    "text",
    [
        "Match canonical all\n  Port 2201\n",
        "Match final all\n  Port 2201\n",
        "Host web\n  CanonicalizeHostname yes\n",
        "CanonicalizeHostname=always\n",
        'Include "/nowhere/a b.conf"\n',
        "Include /nowhere/[ab].conf\n",
        "Include ~nobody/x.conf\n",
        "Include /nowhere/%h.conf\n",
        "Host web\n  Include /nowhere/x.conf # a comment\n",
        "  match EXEC /bin/true\n",
        "Match host web !exec /bin/false\n  Port 2201\n",
        "Host web\n  IdentityFile ${HOME\n",
        # Another user's home comes from a password database entry the key does not hold.
        "Host web\n  UserKnownHostsFile ~nobody/known_hosts\n",
        # ssh splits Match arguments at "=" too: this is "host web" and "exec all".
        "Match host web=exec all\n  Port 2201\n",
        # With CNAMEs it may follow, ssh -G looks the name up even without canonicalization.
        "Host web\n  HostName localhost\n  CanonicalizePermittedCNAMEs *.a.example:*.b.example\n",
    ],
)
def test_configs_that_depend_on_more_than_their_files_ask_ssh_every_run(
    tmp_path: Path, ssh: CountedSsh, text: str
) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    first = resolve(config)
    assert resolve(config) == first
    assert ssh.runs == 2
    # Refused by the walk itself, before ssh's own account of the files it read is compared.
    assert REAL_SSH is not None
    assert SshGCache.open(REAL_SSH, config, tmp_path / "cache") is None


def test_an_included_file_writable_by_its_group_is_asked_every_run(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    """Debian's ssh accepts it only while its group has the owner alone as member."""
    included = tmp_path / "hosts.conf"
    included.write_text("Host web\n  HostName 10.0.0.5\n")
    included.chmod(0o664)
    config = tmp_path / "config"
    config.write_text(f"Include {included}\n")
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(resolve(config).hostname)
        except SshConfigError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    assert ssh.runs == 2


def test_a_config_changed_and_changed_back_during_a_run_is_not_stored(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    resolver = make_resolver(str(config), 10.0, pytest.fail)
    config.write_text("Host web\n  HostName 10.9.9.9\n")  # for a moment, while hosts resolve
    assert resolver.lookup("web").hostname == "10.9.9.9"
    config.write_text("Host web\n  HostName 10.0.0.5\n")  # the same bytes as at the start
    resolver.close()
    assert resolve(config).hostname == "10.0.0.5"


@pytest.mark.parametrize("linked", ["config", "include folder"])
def test_a_link_pointed_elsewhere_and_back_during_a_run_is_not_stored(
    tmp_path: Path, ssh: CountedSsh, linked: str
) -> None:
    """Say a dotfiles manager switching generations and rolling back: the files are never
    touched, only the link to them."""
    for version, address in (("a", "10.0.0.5"), ("b", "10.9.9.9")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "hosts.conf").write_text(f"Host web\n  HostName {address}\n")
    link = tmp_path / "current"
    config = tmp_path / "config"
    if linked == "config":
        target, config = "a/hosts.conf", link
    else:
        target = "a"
        config.write_text(f"Include {link}/*.conf\n")

    def point(to: str) -> None:
        (tmp_path / "new").symlink_to(to)
        os.replace(tmp_path / "new", link)

    point(target)
    resolver = make_resolver(str(config), 10.0, pytest.fail)
    point(target.replace("a", "b"))
    assert resolver.lookup("web").hostname == "10.9.9.9"
    point(target)
    resolver.close()
    assert resolve(config).hostname == "10.0.0.5"


def test_a_config_file_ssh_does_not_check_may_be_group_writable(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    """ssh checks owner and mode of included files, not of the -F file: a umask of 002 must
    not cost the cache."""
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n  # ~. ends a session; ~name in a comment\n")
    config.chmod(0o664)
    assert resolve(config).hostname == "10.0.0.5"
    assert resolve(config).hostname == "10.0.0.5"
    assert ssh.runs == 1


def test_an_include_relative_to_home_follows_home(
    tmp_path: Path, ssh: CountedSsh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh's Include takes "~" and relative paths from $HOME, not the password database."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    config = tmp_path / "config"
    config.write_text("Include hosts.conf\n")
    assert resolve(config).port == 22
    (tmp_path / "home" / ".ssh" / "hosts.conf").write_text("Host web\n  Port 2201\n")
    assert resolve(config).port == 2201
    assert resolve(config).port == 2201
    assert ssh.runs == 2


def test_a_fifo_in_an_include_folder_does_not_hang_the_run(tmp_path: Path, ssh: CountedSsh) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    os.mkfifo(folder / "zz.conf")
    config = tmp_path / "config"
    config.write_text(f"Include {folder}/*.conf\n")
    assert REAL_SSH is not None
    outcome: list[object] = []
    opening = threading.Thread(
        target=lambda: outcome.append(SshGCache.open(REAL_SSH, config, tmp_path / "cache")),
        daemon=True,
    )
    opening.start()
    opening.join(10)
    assert outcome == [None]  # not cached, and at once: ssh -G's own timeout then applies
    with contextlib.suppress(OSError):  # a still-blocked open() would finish now
        os.close(os.open(folder / "zz.conf", os.O_WRONLY | os.O_NONBLOCK))


def test_a_cache_file_found_damaged_is_started_again(tmp_path: Path, ssh: CountedSsh) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    resolve(config)
    path = Path(os.environ["XDG_CACHE_HOME"]) / "platformctl" / FILE_NAME
    damage_tables(path)
    assert resolve(config).hostname == "10.0.0.5"  # asks ssh, and keeps the answer again
    assert resolve(config).hostname == "10.0.0.5"
    assert ssh.runs == 2


def test_the_newest_answers_are_kept_up_to_the_cap(
    tmp_path: Path, ssh: CountedSsh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sshgcache, "MAX_ENTRIES", 3)
    config = tmp_path / "config"
    config.write_text("Host *\n  Port 2201\n")
    for alias in ("a1", "a2", "a3", "a4", "a5"):
        resolve(config, alias)
    path = Path(os.environ["XDG_CACHE_HOME"]) / "platformctl" / FILE_NAME
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM answer").fetchone()[0] == 3
    assert resolve(config, "a5").port == 2201
    assert ssh.runs == 5  # a5 was kept
    assert resolve(config, "a1").port == 2201
    assert ssh.runs == 6  # a1 was not


def damage_tables(path: Path) -> None:
    """Overwrite every page after the schema's, as a crash or a bad disk may."""
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(page)
        fh.write(b"\xa5" * (size - page))


def test_a_config_edited_during_a_run_is_not_stored_under_its_old_state(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    resolver = make_resolver(str(config), 10.0, pytest.fail)
    config.write_text("Host web\n  HostName 10.0.0.6\n")  # while the run resolves hosts
    assert resolver.lookup("web").hostname == "10.0.0.6"
    resolver.close()
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    assert resolve(config).hostname == "10.0.0.5"
    assert ssh.runs == 2


def test_an_answer_is_not_kept_when_ssh_read_other_files_than_the_walk_found(
    tmp_path: Path, ssh: CountedSsh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Say an ssh built with its system config elsewhere: the walk reads one file, ssh
    another, and ssh's own account (``-v``) keeps the answer out of the cache."""
    elsewhere = tmp_path / "ssh_config"
    shutil.copy("/etc/ssh/ssh_config", elsewhere)
    monkeypatch.setattr(sshgcache, "SYSTEM_CONFIG", str(elsewhere))
    for _ in range(2):
        resolver = make_resolver(None, 10.0, pytest.fail)
        resolver.lookup("web")
        resolver.close()
    assert ssh.runs == 2
    assert any("-v" in call for call in ssh.calls)  # the cache was in use, and refused it


def test_a_script_in_front_of_ssh_is_asked_every_run(
    tmp_path: Path, ssh: CountedSsh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrapper may add options or pick a client: its answers are not the client's."""
    folder = tmp_path / "bin"
    folder.mkdir()
    wrapper = folder / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {REAL_SSH} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    assert resolve(config).hostname == "10.0.0.5"
    assert resolve(config).hostname == "10.0.0.5"
    assert ssh.runs == 2


def test_a_config_error_still_names_the_file_and_the_option(
    tmp_path: Path, ssh: CountedSsh
) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  Port 2222\n  Bogus yes\n")
    for _ in range(2):  # never stored: asked again, and told again
        with pytest.raises(SshConfigError) as err:
            resolve(config)
        message = str(err.value)
        assert str(config) in message and "line 3" in message and "bogus" in message.lower()
        assert "debug1" not in message and "OpenSSH_" not in message
    assert ssh.runs == 2


def test_the_system_config_of_this_machine_is_followed(tmp_path: Path, ssh: CountedSsh) -> None:
    """Without --ssh-config, ssh reads ~/.ssh/config and the system config with its includes;
    the walk must name the same files as ssh for the answers to be kept."""
    resolver = make_resolver(None, 10.0, pytest.fail)
    first = resolver.lookup("web")
    resolver.close()
    resolver = make_resolver(None, 10.0, pytest.fail)
    assert resolver.lookup("web") == first
    resolver.close()
    assert ssh.runs == 1


def test_a_cache_others_may_write_is_not_used(tmp_path: Path, ssh: CountedSsh) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    assert REAL_SSH is not None
    assert SshGCache.open(REAL_SSH, config, folder) is None
    folder.chmod(0o700)
    assert SshGCache.open(REAL_SSH, config, folder) is not None


# A differential check: configs built from the pieces users write (Host and Match blocks,
# Include folders, "=" and mixed case), changed step by step; after every step the cached
# resolution must equal a fresh `ssh -G`.
_OPTION = st.sampled_from(
    ["HostName 10.0.0.{n}", "Port 22{n}", "User u{n}", "hostname=h{n}", "PORT = 23{n}"]
)
_HEAD = st.sampled_from(
    [
        "Host web",
        "Host db web",
        "Host !db *",
        "Host w?b",
        "Match host web",
        "Match user u1",
        "match originalhost db",
        "Match host web !user root",
        "Match localuser root",
        "Match all",
    ]
)
_BLOCK = st.tuples(_HEAD, st.lists(st.tuples(_OPTION, st.integers(0, 9)), max_size=3))


def _block(head: str, options: list[tuple[str, int]]) -> str:
    return head + "\n" + "".join(f"  {o.format(n=n)}\n" for o, n in options)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["main", "conf.d/a.conf", "conf.d/b.conf", "conf.d/.hidden.conf"]),
            st.lists(_BLOCK, max_size=3),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_cached_answers_equal_ssh_after_every_change(
    tmp_path_factory: pytest.TempPathFactory, ssh: CountedSsh, steps: list
) -> None:
    assert REAL_SSH is not None
    root = tmp_path_factory.mktemp("differential")
    (root / "conf.d").mkdir()
    config = root / "main"
    config.write_text("")
    head = f"Include {root}/conf.d/*.conf\n"
    for name, blocks in steps:
        text = "".join(_block(h, o) for h, o in blocks)
        (root / name).write_text(head + text if name == "main" else text)
        for alias, user in (("web", None), ("db", "u1")):
            fresh = OpenSshResolver(REAL_SSH, config).lookup(alias, user=user)
            assert resolve(config, alias, user=user) == fresh
            assert resolve(config, alias, user=user) == fresh  # now from the cache
