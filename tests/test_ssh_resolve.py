"""Host resolution: reading ``ssh -G``, tokens, key order, timeouts, ProxyJump specs, the
alias check, and the fallback resolver used when no ssh client is installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platformctl.collector.connector import CollectOptions, Connector
from platformctl.collector.openssh import (
    OpenSshResolver,
    SshConfigError,
    check_alias,
    parse_ssh_g,
)
from platformctl.collector.ssh import (
    effective_timeout,
    keyscan_hint,
    order_identities,
    parse_jump,
)
from platformctl.collector.sshconfig import SshConfigFile, SshTarget
from platformctl.collector.sshtokens import (
    PROXY_COMMAND_TOKENS,
    TokenError,
    TokenValues,
    expand_path,
    expand_tokens,
    home_dir,
)
from platformctl.errors import UsageError
from tests.conftest import Runner, write_module

SSH = shutil.which("ssh")
needs_ssh = pytest.mark.skipif(SSH is None, reason="no ssh client installed")

G_OUTPUT = """\
host web
user deploy
hostname 10.0.0.5
port 2222
identitiesonly yes
identityfile ~/.ssh/id_%n_%p
identityfile /keys/k%%1
identityagent /run/agent.sock
userknownhostsfile /root/.ssh/known_hosts.d/web /tmp/known hosts
globalknownhostsfile /etc/ssh/ssh_known_hosts
stricthostkeychecking accept-new
connecttimeout 7
proxyjump jump,ops@bastion:2200
proxycommand none
hostkeyalias web-key
"""


def test_ssh_g_output_becomes_a_target() -> None:
    target = parse_ssh_g(G_OUTPUT, "web")
    assert (target.hostname, target.port, target.user) == ("10.0.0.5", 2222, "deploy")
    assert target.identity_files == (f"{home_dir()}/.ssh/id_web_2222", "/keys/k%1")
    assert target.identities_only is True
    assert target.identity_agent == "/run/agent.sock"
    # ssh -G joins paths with spaces, unquoted; a new path starts with "/" or "~".
    assert target.known_hosts_files == ("/root/.ssh/known_hosts.d/web", "/tmp/known hosts")
    assert target.global_known_hosts_files == ("/etc/ssh/ssh_known_hosts",)
    assert target.strict_host_key_checking == "accept-new"
    assert target.connect_timeout == 7.0
    assert target.proxy_jump == ("jump", "ops@bastion:2200")
    assert target.proxy_command is None
    assert target.known_hosts_name == "web-key"  # HostKeyAlias, without the port


def test_ssh_g_defaults() -> None:
    target = parse_ssh_g(
        "hostname db\nport 22\nuser me\nconnecttimeout none\nstricthostkeychecking ask\n"
        "identityfile ~/.ssh/id_rsa\nidentityfile ~/.ssh/id_ed25519\n",
        "db",
    )
    assert target.connect_timeout is None
    assert target.strict_host_key_checking == "yes"  # ask, in batch mode
    assert target.identity_agent == "SSH_AUTH_SOCK"
    assert target.identity_files == (f"{home_dir()}/.ssh/id_rsa", f"{home_dir()}/.ssh/id_ed25519")
    assert target.known_hosts_name == "db"
    assert target.proxy_jump == () and target.proxy_command is None


def test_the_password_database_is_asked_once_for_a_whole_fleet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every host's default identity files start with ``~``: seven lookups a host, each
    possibly a network round trip to a directory service, where one per run is enough."""
    import pwd

    from platformctl.collector import sshtokens

    sshtokens._account.cache_clear()
    asked: list[int] = []
    getpwuid = pwd.getpwuid

    def counting(uid: int) -> pwd.struct_passwd:
        asked.append(uid)
        return getpwuid(uid)

    monkeypatch.setattr(sshtokens.pwd, "getpwuid", counting)
    text = "".join(f"identityfile ~/.ssh/id_{kind}\n" for kind in ("rsa", "ecdsa", "ed25519"))
    targets = [parse_ssh_g(f"hostname h{i}\n{text}", f"h{i}") for i in range(50)]
    assert len(asked) == 1
    home = getpwuid(asked[0]).pw_dir
    assert all(t.identity_files[0] == f"{home}/.ssh/id_rsa" for t in targets)


@pytest.mark.parametrize(
    ("lines", "jump", "command", "agent"),
    [
        ("proxycommand nc %h %p\n", (), "nc %h %p", "SSH_AUTH_SOCK"),
        ("proxyjump b\nproxycommand nc %h %p\n", ("b",), None, "SSH_AUTH_SOCK"),
        ("proxyjump none\nidentityagent none\n", (), None, None),
    ],
)
def test_ssh_g_proxies_and_agent(
    lines: str, jump: tuple[str, ...], command: str | None, agent: str | None
) -> None:
    target = parse_ssh_g(f"hostname h\nport 22\nuser u\n{lines}", "h")
    assert (target.proxy_jump, target.proxy_command, target.identity_agent) == (
        jump,
        command,
        agent,
    )


@given(st.text(max_size=400))
def test_any_ssh_g_output_parses_or_fails_with_one_message(text: str) -> None:
    try:
        target = parse_ssh_g(text, "h")
    except SshConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(target, SshTarget) and target.port >= 0


def test_a_host_connect_timeout_wins_over_the_command_line_default() -> None:
    target = parse_ssh_g("hostname h\nport 22\nuser u\nconnecttimeout 3\n", "h")
    assert effective_timeout(target, 10.0) == 3.0
    assert effective_timeout(target, 1.0) == 3.0
    unset = parse_ssh_g("hostname h\nport 22\nuser u\nconnecttimeout none\n", "h")
    assert effective_timeout(unset, 10.0) == 10.0


def test_tokens() -> None:
    values = TokenValues("10.0.0.5", 2222, "deploy", "web")
    assert expand_tokens("%h:%p %r %n %k 100%%", values) == "10.0.0.5:2222 deploy web web 100%"
    assert expand_path("~/k_%n", values) == f"{home_dir()}/k_web"
    with pytest.raises(TokenError):
        expand_tokens("%z", values)
    # ProxyCommand takes only %h %n %p %r (and %%).
    assert expand_tokens("nc %h %p", values, PROXY_COMMAND_TOKENS) == "nc 10.0.0.5 2222"
    with pytest.raises(TokenError):
        expand_tokens("nc %d", values, PROXY_COMMAND_TOKENS)


def test_identities_only_keeps_agent_keys_that_are_not_configured_out() -> None:
    agent = [b"agent-a", b"file-2"]
    files = [b"file-1", b"file-2", None]
    assert order_identities(agent, files, identities_only=False) == [
        ("agent", 0),
        ("agent", 1),
        ("file", 0),
        ("file", 2),
    ]
    # IdentitiesOnly: an agent key is used only when it is one of the IdentityFiles.
    assert order_identities(agent, files, identities_only=True) == [
        ("agent", 1),
        ("file", 0),
        ("file", 2),
    ]
    assert order_identities([], files, identities_only=True) == [
        ("file", 0),
        ("file", 1),
        ("file", 2),
    ]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("bastion", (None, "bastion", None)),
        ("ops@bastion", ("ops", "bastion", None)),
        ("ops@bastion:2200", ("ops", "bastion", 2200)),
        ("ssh://ops@bastion:2200", ("ops", "bastion", 2200)),
        ("[::1]:2200", (None, "::1", 2200)),
    ],
)
def test_jump_specs(spec: str, parsed: tuple[str | None, str, int | None]) -> None:
    assert parse_jump(spec) == parsed


@pytest.mark.parametrize(
    "bad", ["x;touch /tmp/p", "-oProxyCommand=x", "a b", "$(id)", "u@h", "", "edge\n"]
)
def test_only_alias_shaped_hosts_are_accepted(bad: str) -> None:
    with pytest.raises(UsageError, match="not an ssh alias"):
        check_alias(bad)


@needs_ssh
def test_a_bad_alias_never_reaches_match_exec(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = tmp_path / "config"
    config.write_text(f'Match exec "touch {marker}"\n  Port 2222\n')
    resolver = OpenSshResolver(str(SSH), config)
    with pytest.raises(SshConfigError):
        resolver.lookup("x;true")
    assert not marker.exists()
    resolver.lookup("web")  # the same config with a good alias does run it
    assert marker.exists()


@needs_ssh
def test_default_key_files_come_from_ssh_in_its_order(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n")
    files = OpenSshResolver(str(SSH), config).lookup("web").identity_files
    home = home_dir()
    assert files[:2] == (f"{home}/.ssh/id_rsa", f"{home}/.ssh/id_ecdsa")
    assert files.index(f"{home}/.ssh/id_ed25519") > files.index(f"{home}/.ssh/id_ecdsa")
    # An IdentityFile replaces the defaults.
    config.write_text("Host web\n  IdentityFile /keys/deploy\n")
    assert OpenSshResolver(str(SSH), config).lookup("web").identity_files == ("/keys/deploy",)


@needs_ssh
def test_a_config_error_names_the_file_and_the_option(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  Port 2222\n  Bogus yes\n")
    with pytest.raises(SshConfigError) as err:
        OpenSshResolver(str(SSH), config).lookup("web")
    assert str(config) in str(err.value) and "line 3" in str(err.value)
    assert "bogus" in str(err.value).lower()


@needs_ssh
def test_ssh_resolves_a_jump_hop_with_its_overrides(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host hop\n  User ops\n  Port 2200\n  ProxyJump far\n")
    resolver = OpenSshResolver(str(SSH), config)
    own = resolver.lookup("hop")
    assert (own.user, own.port, own.proxy_jump) == ("ops", 2200, ("far",))
    # A later hop of a chain: -l/-p from the spec, -J from the hops before it.
    later = resolver.lookup("hop", user="root", port=22, jump="first")
    assert (later.user, later.port, later.proxy_jump) == ("root", 22, ("first",))


def test_without_an_ssh_client_the_fallback_resolver_is_used_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text("Host web\n  HostName 10.0.0.5\n  Port 2222 # lab\n  User root # admin\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ssh here
    said: list[str] = []
    connector = Connector(CollectOptions(ssh_config=str(config)), warn=said.append)
    assert isinstance(connector.settings.resolver, SshConfigFile)
    assert said and "no ssh client" in said[0] and "own resolver" in said[0]
    target = connector.settings.resolver.lookup("web")
    assert (target.hostname, target.port, target.user) == ("10.0.0.5", 2222, "root")


def test_fallback_resolver_overrides_for_a_jump_hop(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "Host hop\n  User ops\n  ProxyJump far\n  ProxyCommand nc %h %p\n  IdentityAgent none\n"
    )
    resolver = SshConfigFile(config)
    own = resolver.lookup("hop")
    assert own.proxy_jump == ("far",) and own.proxy_command is None
    assert own.identity_agent is None
    later = resolver.lookup("hop", user="root", port=2200, jump="first")
    assert (later.user, later.port, later.proxy_jump) == ("root", 2200, ("first",))


def test_the_keyscan_hint_writes_where_ssh_reads_first() -> None:
    target = parse_ssh_g(
        f"hostname db\nport 2222\nuser u\nuserknownhostsfile {home_dir()}/.ssh/known_hosts "
        f"{home_dir()}/.ssh/known_hosts2\n",
        "db",
    )
    assert keyscan_hint(target) == "ssh-keyscan -p 2222 db >> ~/.ssh/known_hosts"
    custom = parse_ssh_g("hostname db\nport 22\nuser u\nuserknownhostsfile /etc/x y\n", "db")
    assert keyscan_hint(custom) == "ssh-keyscan db >> '/etc/x y'"


@given(st.text(alphabet="%hnpr a/-_.", max_size=40))
def test_token_expansion_is_total_on_allowed_tokens(text: str) -> None:
    values = TokenValues("h.example", 22, "u", "alias")
    try:
        out = expand_tokens(text, values, PROXY_COMMAND_TOKENS)
    except TokenError:
        # Only a '%' followed by something that is not an allowed token is refused.
        assert "%" in text
    else:
        assert "%" not in out or "%%" in text


def test_collect_refuses_a_host_that_is_not_an_alias(tmp_path: Path, run_cli: Runner) -> None:
    marker = tmp_path / "ran"
    config = tmp_path / "config"
    config.write_text(f'Match exec "touch {marker}"\n  Port 2222\n')
    result = run_cli("collect", "--ssh-config", str(config), "--host", "x;touch /tmp/y")
    assert result.code == 1
    assert result.err.strip() == (
        "platformctl: --host 'x;touch /tmp/y' is not an ssh alias or host name "
        "(letters, digits, '.', '-', '_', ':' only)"
    )
    assert not marker.exists()


@needs_ssh
def test_a_host_its_ssh_config_does_not_let_us_reach_is_unreachable(
    tmp_path: Path, run_cli: Runner
) -> None:
    """Never contacted, it is not a host that answered (`error`), and a run that reached no
    host exits 5, not 8."""
    write_module(
        tmp_path / "p",
        "web",
        {"host": "web1", "orchestrator": "docker", "container": "web", "image_observed": "x:1"},
    )
    config = tmp_path / "ssh_config"
    config.write_text("Host web1\n  HostName 127.0.0.1\n  Port 2\n  Bogusoption yes\n")
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(tmp_path / "p"),
        "--ssh-config",
        str(config),
        "--db",
        str(tmp_path / "d"),
    )
    assert result.code == 5, result.err
    (host,) = result.json()["hosts"]
    assert host["status"] == "unreachable"
    assert "line 4" in host["reason"] and "bogusoption" in host["reason"].lower()
