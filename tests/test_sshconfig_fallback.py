"""The fallback ssh config resolver (``SshConfigFile``, used when no ssh client is on PATH), in
process: Host blocks, Include, ``~`` expansion, each option's value, bad values, overrides.

Expected values are OpenSSH's (checked against ``ssh -G`` where the option has an OpenSSH
meaning), except where README "SSH: differences from OpenSSH" says the fallback differs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from platformctl.collector.sshconfig import SshConfigFile, SshTarget, explicit_config
from platformctl.collector.sshtokens import PROXY_COMMAND_TOKENS, TokenValues, expand_tokens
from platformctl.errors import UsageError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of its own (``~``, ``~/.ssh``), and a known local user name."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "tester")
    # Relative paths must resolve against ~/.ssh, never the current folder.
    monkeypatch.chdir(tmp_path)
    return home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def resolve(home: Path, text: str, alias: str = "web") -> SshTarget:
    """``alias`` looked up in ``~/.ssh/config`` holding ``text``."""
    return SshConfigFile(write(home / ".ssh" / "config", text)).lookup(alias)


def defaults(home: Path, alias: str, **changes: object) -> SshTarget:
    """What an alias no block mentions resolves to, with ``changes``."""
    fields: dict[str, object] = {
        "alias": alias,
        "hostname": alias,
        "port": 22,
        "user": "tester",
        "identity_files": (),
        "identities_only": False,
        "proxy_jump": (),
        "connect_timeout": None,
        "known_hosts_files": (f"{home}/.ssh/known_hosts", f"{home}/.ssh/known_hosts2"),
        "global_known_hosts_files": ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"),
        "strict_host_key_checking": "yes",
        "proxy_command": None,
        "identity_agent": "SSH_AUTH_SOCK",
        "host_key_alias": None,
        "hash_known_hosts": False,
    }
    fields.update(changes)
    return SshTarget(**fields)  # type: ignore[arg-type]


# --- every option of one Host block -------------------------------------------------------------


def test_a_host_block_sets_every_connection_setting(home: Path) -> None:
    target = resolve(
        home,
        """\
Host web
  HostName 10.0.0.5
  Port 2222
  User deploy
  IdentityFile ~/.ssh/id_web
  IdentityFile /keys/shared
  IdentitiesOnly yes
  UserKnownHostsFile ~/.ssh/known_hosts.d/web /var/lib/known
  GlobalKnownHostsFile /etc/ssh/fleet_known_hosts
  StrictHostKeyChecking accept-new
  ConnectTimeout 7.5
  ProxyJump jump,ops@bastion:2200
  IdentityAgent ~/.ssh/agent.sock
  HostKeyAlias web-key
  HashKnownHosts yes
""",
    )
    assert target == SshTarget(
        alias="web",
        hostname="10.0.0.5",
        port=2222,
        user="deploy",
        identity_files=(f"{home}/.ssh/id_web", "/keys/shared"),
        identities_only=True,
        proxy_jump=("jump", "ops@bastion:2200"),
        connect_timeout=7.5,
        known_hosts_files=(f"{home}/.ssh/known_hosts.d/web", "/var/lib/known"),
        global_known_hosts_files=("/etc/ssh/fleet_known_hosts",),
        strict_host_key_checking="accept-new",
        proxy_command=None,
        identity_agent=f"{home}/.ssh/agent.sock",
        host_key_alias="web-key",
        hash_known_hosts=True,
    )
    assert target.known_hosts_name == "web-key"


def test_an_alias_no_block_mentions_gets_openssh_defaults(home: Path) -> None:
    target = resolve(home, "Host other\n  Port 2222\n  User ops\n  ConnectTimeout 3\n", "db")
    assert target == defaults(home, "db")
    assert target.known_hosts_name == "db"


def test_without_any_config_file_every_alias_gets_the_defaults(home: Path) -> None:
    assert SshConfigFile(None).lookup("db") == defaults(home, "db")


def test_a_proxy_command_is_kept_when_no_jump_is_set(home: Path) -> None:
    target = resolve(home, "Host web\n  ProxyCommand nc bastion 22\n")
    assert target == defaults(home, "web", proxy_command="nc bastion 22")


# --- Host patterns ------------------------------------------------------------------------------

PATTERNS = """\
Host *.prod !db.prod
  User deploy
Host db.prod web?
  Port 2200
Host *
  User fallback
  Port 2222
"""


@pytest.mark.parametrize(
    ("alias", "user", "port"),
    [
        ("api.prod", "deploy", 2222),  # first obtained value wins, later blocks fill the rest
        ("db.prod", "fallback", 2200),  # negated in the first block
        ("web1", "fallback", 2200),  # ? matches one character
        ("web12", "fallback", 2222),  # ... and only one
    ],
)
def test_host_patterns_negation_and_first_value_wins(
    home: Path, alias: str, user: str, port: int
) -> None:
    target = resolve(home, PATTERNS, alias)
    assert (target.user, target.port) == (user, port)


# --- option values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("No", "no"),
        ("accept-new", "accept-new"),
        ("Accept-New", "accept-new"),
        # OpenSSH's aliases: off/false are no, true is yes, ask is yes in an unattended run.
        ("off", "no"),
        ("false", "no"),
        ("true", "yes"),
        ("ask", "yes"),
        # A value OpenSSH would refuse never weakens checking.
        ("sometimes", "yes"),
    ],
)
def test_strict_host_key_checking_values(home: Path, written: str, meant: str) -> None:
    target = resolve(home, f"Host web\n  StrictHostKeyChecking {written}\n")
    assert target.strict_host_key_checking == meant


@pytest.mark.parametrize(
    ("written", "on"),
    [("yes", True), ("YES", True), ("Yes", True), ("no", False), ("nope", False)],
)
def test_yes_no_flags(home: Path, written: str, on: bool) -> None:
    target = resolve(home, f"Host web\n  IdentitiesOnly {written}\n  HashKnownHosts {written}\n")
    assert (target.identities_only, target.hash_known_hosts) == (on, on)


@pytest.mark.parametrize(
    ("lines", "jump", "command"),
    [
        ("ProxyJump a,ops@b:2200,c\n", ("a", "ops@b:2200", "c"), None),
        ("ProxyJump none\n", (), None),
        ("ProxyJump NONE\n", (), None),
        # A jump host wins over a ProxyCommand (the first of them, in OpenSSH, decides).
        ("ProxyJump b\n  ProxyCommand nc x 22\n", ("b",), None),
        ("ProxyJump none\n  ProxyCommand nc x 22\n", (), "nc x 22"),
        ("ProxyCommand none\n", (), None),
    ],
)
def test_proxy_jump_and_proxy_command(
    home: Path, lines: str, jump: tuple[str, ...], command: str | None
) -> None:
    target = resolve(home, f"Host web\n  {lines}")
    assert (target.proxy_jump, target.proxy_command) == (jump, command)


@pytest.mark.parametrize(
    ("written", "agent"),
    [
        (None, "SSH_AUTH_SOCK"),
        ("SSH_AUTH_SOCK", "SSH_AUTH_SOCK"),
        ("none", None),
        ("None", None),
        ("/run/agent.sock", "/run/agent.sock"),
        ("~/agent.sock", "{home}/agent.sock"),
        ("$AGENT_DIR/agent.sock", "/run/user/1000/agent.sock"),
    ],
)
def test_identity_agent(
    home: Path, monkeypatch: pytest.MonkeyPatch, written: str | None, agent: str | None
) -> None:
    monkeypatch.setenv("AGENT_DIR", "/run/user/1000")
    line = f"  IdentityAgent {written}\n" if written else ""
    target = resolve(home, f"Host web\n  Port 2200\n{line}")
    assert target.identity_agent == (agent.format(home=home) if agent else None)


def test_known_hosts_files_expand_home_and_variables(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET", "/srv/fleet")
    target = resolve(
        home,
        "Host web\n  UserKnownHostsFile ~/.ssh/kh_a ${FLEET}/kh_b\n"
        "  GlobalKnownHostsFile ~/global_kh /etc/ssh/kh\n",
    )
    assert target.known_hosts_files == (f"{home}/.ssh/kh_a", "/srv/fleet/kh_b")
    assert target.global_known_hosts_files == (f"{home}/global_kh", "/etc/ssh/kh")


@pytest.mark.parametrize("none", ["none", "NONE"])
def test_known_hosts_files_none_means_no_file(home: Path, none: str) -> None:
    target = resolve(
        home, f"Host web\n  UserKnownHostsFile {none}\n  GlobalKnownHostsFile {none}\n"
    )
    assert (target.known_hosts_files, target.global_known_hosts_files) == ((), ())


def test_connect_timeout_is_seconds(home: Path) -> None:
    assert resolve(home, "Host web\n  ConnectTimeout 12\n").connect_timeout == 12.0
    assert resolve(home, "Host web\n  Port 2200\n").connect_timeout is None


# --- comments -----------------------------------------------------------------------------------


def test_trailing_comments_end_the_value_as_in_openssh(home: Path) -> None:
    target = resolve(
        home,
        "# fleet\nHost web # the web tier\n  Port 2299 #lab\n  User root # admin\n"
        "  HostKeyAlias web#1\n  # ProxyJump commented out\n",
    )
    assert (target.port, target.user, target.proxy_jump) == (2299, "root", ())
    assert target.host_key_alias == "web#1"  # a '#' inside a word is not a comment


def test_a_hash_inside_quotes_is_not_a_comment(home: Path) -> None:
    target = resolve(home, 'Host web\n  ProxyCommand sh -c "exec nc b 22 # via b" # note\n')
    assert target.proxy_command == 'sh -c "exec nc b 22 # via b"'


def test_bytes_that_are_not_utf8_do_not_stop_the_config(home: Path) -> None:
    (home / ".ssh" / "extra").write_bytes(b"# caf\xe9\nHost db\n  Port 2201\n")
    config = home / ".ssh" / "config"
    config.write_bytes(b"# r\xe9sum\xe9 of the fleet\nHost web\n  Port 2200\nInclude extra\n")
    resolver = SshConfigFile(config)
    assert (resolver.lookup("web").port, resolver.lookup("db").port) == (2200, 2201)


# --- Include ------------------------------------------------------------------------------------


def test_relative_includes_resolve_against_dot_ssh_not_the_config_folder(home: Path) -> None:
    # ssh_config(5): relative Include paths are taken from ~/.ssh, even with -F.
    config = write(home / "elsewhere" / "config", "Include conf.d/*.conf\n")
    write(home / "elsewhere" / "conf.d" / "web.conf", "Host web\n  Port 1111\n")
    write(home / ".ssh" / "conf.d" / "web.conf", "Host web\n  Port 2200\n")
    assert SshConfigFile(config).lookup("web").port == 2200


def test_included_globs_are_read_in_sorted_order(home: Path) -> None:
    # Created in reverse, so directory order would give the other answer on most filesystems.
    write(home / ".ssh" / "conf.d" / "20-late.conf", "Host web\n  Port 2020\n  User late\n")
    write(home / ".ssh" / "conf.d" / "10-early.conf", "Host web\n  Port 1010\n")
    (home / ".ssh" / "conf.d" / "15-a-folder.conf").mkdir()  # matched, not a file: skipped
    target = resolve(home, "Include conf.d/*.conf\nHost *\n  User last\n")
    assert (target.port, target.user) == (1010, "late")


@pytest.mark.parametrize(
    "include",
    [
        "Include {abs}",
        "Include ~/.ssh/X11.conf",
        'Include "X11.conf"',
        "Include 'X11.conf'",
        "include X11.conf",
        "Include=X11.conf",
        "  Include missing.conf X11.conf # the X hosts",
    ],
)
def test_include_forms(home: Path, include: str) -> None:
    path = write(home / ".ssh" / "X11.conf", "Host web\n  Port 2200\n")
    assert resolve(home, include.format(abs=path) + "\n").port == 2200


def test_a_missing_include_is_ignored(home: Path) -> None:
    target = resolve(home, "Include nothing-here.conf /no/such/*.conf\nHost web\n  Port 2200\n")
    assert target.port == 2200


def test_a_commented_out_include_is_not_read(home: Path) -> None:
    write(home / ".ssh" / "extra", "Host web\n  Port 1111\n")
    assert resolve(home, "#Include extra\n# Include extra\nHost web\n  Port 2200\n").port == 2200


def _include_chain(home: Path, files: int) -> Path:
    """``config`` includes ``c1``, which includes ``c2`` ... the last one sets the port."""
    ssh = home / ".ssh"
    for n in range(files - 1):
        write(ssh / ("config" if n == 0 else f"c{n}"), f"Include c{n + 1}\n")
    write(ssh / f"c{files - 1}", "Host web\n  Port 2216\n")
    return ssh / "config"


def test_includes_nest_sixteen_deep_as_in_openssh(home: Path) -> None:
    # ssh -G: the config plus 16 nested files resolve; a 17th level is an error.
    assert SshConfigFile(_include_chain(home, 17)).lookup("web").port == 2216


def test_deeper_include_nesting_is_a_usage_error(home: Path) -> None:
    with pytest.raises(UsageError, match=r"Include nesting deeper than 16 at .*c17$"):
        SshConfigFile(_include_chain(home, 18))


def test_a_config_that_includes_itself_is_a_usage_error(home: Path) -> None:
    config = write(home / ".ssh" / "config", "Host web\n  Port 2200\nInclude config\n")
    with pytest.raises(UsageError, match="Include nesting deeper than 16"):
        SshConfigFile(config)


# --- errors -------------------------------------------------------------------------------------


def test_an_unreadable_config_names_the_file_and_the_reason(home: Path) -> None:
    missing = home / ".ssh" / "missing"
    with pytest.raises(UsageError) as err:
        SshConfigFile(missing)
    assert str(err.value) == f"cannot read ssh config {missing}: No such file or directory"
    with pytest.raises(UsageError) as err:
        SshConfigFile(home / ".ssh")
    assert str(err.value) == f"cannot read ssh config {home}/.ssh: Is a directory"


def test_an_unparsable_line_names_the_file_and_the_line(home: Path) -> None:
    config = write(home / ".ssh" / "config", "Host web\n  Port\n")
    with pytest.raises(UsageError) as err:
        SshConfigFile(config)
    assert str(err.value) == f"cannot parse ssh config {config}: Unparsable line Port"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Port ssh", "ssh config: Port for 'web' is not a number"),
        ("ConnectTimeout soon", "ssh config: ConnectTimeout for 'web' is not a number"),
        # paramiko's own reading of an option fails at lookup time.
        ("CanonicalizeMaxDots many", "ssh config lookup for 'web' failed: invalid literal"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_alias(home: Path, line: str, message: str) -> None:
    config = write(home / ".ssh" / "config", f"Host web\n  {line}\n")
    resolver = SshConfigFile(config)
    with pytest.raises(UsageError) as err:
        resolver.lookup("web")
    assert str(err.value).startswith(message)
    assert resolver.lookup("db") == defaults(home, "db")  # other hosts are unaffected


def test_an_explicit_config_must_exist(home: Path) -> None:
    with pytest.raises(UsageError) as err:
        explicit_config("~/nope")
    assert str(err.value) == f"ssh config {home}/nope does not exist (check --ssh-config)"
    with pytest.raises(UsageError, match="does not exist"):
        SshConfigFile.default(str(home / "nope"))


# --- which file -----------------------------------------------------------------------------


def test_the_default_config_is_dot_ssh_config_when_present(home: Path) -> None:
    write(home / ".ssh" / "config", "Host web\n  Port 2200\n")
    assert SshConfigFile.default(None).lookup("web").port == 2200


def test_without_dot_ssh_config_the_defaults_apply(home: Path) -> None:
    assert SshConfigFile.default(None).lookup("web") == defaults(home, "web")


def test_an_explicit_config_replaces_dot_ssh_config(home: Path) -> None:
    write(home / ".ssh" / "config", "Host web\n  Port 2200\n")
    write(home / "lab.config", "Host web\n  User lab\n")
    target = SshConfigFile.default("~/lab.config").lookup("web")
    assert (target.port, target.user) == (22, "lab")


# --- -l / -p / -J overrides -------------------------------------------------------------------

HOP = "Host hop\n  User ops\n  Port 2200\n  ProxyCommand nc relay 22\n"


def test_overrides_replace_user_port_and_jump(home: Path) -> None:
    target = SshConfigFile(write(home / ".ssh" / "config", HOP)).lookup(
        "hop", user="root", port=2222, jump="first,,ops@second:22"
    )
    assert target == defaults(
        home, "hop", user="root", port=2222, proxy_jump=("first", "ops@second:22")
    )


def test_without_overrides_the_config_stands(home: Path) -> None:
    resolver = SshConfigFile(write(home / ".ssh" / "config", HOP))
    expected = defaults(home, "hop", user="ops", port=2200, proxy_command="nc relay 22")
    assert resolver.lookup("hop") == expected
    assert resolver.lookup("hop", user="", port=0, jump="") == expected


# --- a difference from OpenSSH found while writing these tests ----------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="paramiko expands %h/%p/%r in ProxyCommand before the transport expands tokens "
    "again, so a literal %%h becomes %<hostname> (ProxyCommand fails with 'unknown token')",
)
def test_a_literal_percent_in_proxy_command_survives_as_in_openssh(home: Path) -> None:
    # OpenSSH runs `ssh -W %h:22 relay`-style text literally for %%; SshTarget.proxy_command is
    # documented as "as written (tokens unexpanded)" and the transport expands it once.
    target = resolve(home, "Host web\n  HostName db\n  ProxyCommand printf %%h-%h\n")
    values = TokenValues(target.hostname, target.port, target.user, target.alias)
    command = expand_tokens(target.proxy_command or "", values, PROXY_COMMAND_TOKENS)
    assert command == "printf %h-db"
