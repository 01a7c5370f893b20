"""Ways to a host and how their failures read: bastions, ProxyCommand, the auth timeout, and
the fallback resolver when no ssh client is installed."""

from __future__ import annotations

import contextlib
import gc
import os
import uuid
from pathlib import Path

import pytest

from platformctl.collector.interface import TransportFailure
from tests.conftest import CountingListener, Runner, StandardLab
from tests.lab.lab import LabHost, free_port

COMMON = "  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"


def config(tmp_path: Path, std: StandardLab, text: str) -> Path:
    path = tmp_path / f"ssh_config_{uuid.uuid4().hex[:6]}"
    common = COMMON.format(key=std.lab.client_key, known=std.lab.known_hosts)
    path.write_text(text + "Host *\n" + common + "  GlobalKnownHostsFile none\n")
    return path


def collect(run_cli: Runner, cfg: Path, *hosts: str, env: dict[str, str] | None = None) -> dict:
    args = ["collect", "--json", "--ssh-config", str(cfg), "--connect-timeout", "2"]
    for host in hosts:
        args += ["--host", host]
    result = run_cli(*args, env=env)
    doc = result.json()
    doc["stderr"] = result.err
    return doc


def test_a_dead_bastion_fails_its_hosts_at_once_naming_itself(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path, silent: CountingListener
) -> None:
    alpha = std_lab.lab.hosts["alpha"]
    cfg = config(
        tmp_path,
        std_lab,
        f"Host jump\n  HostName 127.0.0.1\n  Port {silent.port}\n"
        f"Host in1 in2 in3\n  HostName 127.0.0.1\n  Port {alpha.port}\n  ProxyJump jump\n",
    )
    doc = collect(run_cli, cfg, "in1", "in2", "in3")
    assert doc["exit_code"] == 5
    assert [h["status"] for h in doc["hosts"]] == ["unreachable"] * 3
    for host in doc["hosts"]:
        assert host["reason"].startswith("via bastion jump: ")
        assert f"127.0.0.1:{silent.port}" in host["reason"]
    # One attempt on the bastion for all three hosts: its failure is shared, not repeated.
    assert len(silent.accepted) == 1


def test_a_refused_bastion_is_named_and_not_the_host(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    refused = std_lab.lab.ssh_config.read_text().split("Host refused\n")[1].split("Port ")[1]
    port = int(refused.split()[0])
    alpha = std_lab.lab.hosts["alpha"]
    cfg = config(
        tmp_path,
        std_lab,
        f"Host jump\n  HostName 127.0.0.1\n  Port {port}\n"
        f"Host inner\n  HostName 127.0.0.1\n  Port {alpha.port}\n  ProxyJump jump\n",
    )
    (host,) = collect(run_cli, cfg, "inner")["hosts"]
    assert host["reason"] == f"via bastion jump: connection refused by 127.0.0.1:{port}"


def test_a_bastion_chain_through_two_hops_reaches_the_host(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    lab = std_lab.lab
    hop1, hop2 = (lab.start_sshd(f"hop-{uuid.uuid4().hex[:6]}", None) for _ in range(2))
    alpha = lab.hosts["alpha"]
    cfg = config(
        tmp_path,
        std_lab,
        f"Host inner\n  HostName 127.0.0.1\n  Port {alpha.port}\n  ProxyJump h1,h2\n"
        f"Host h1\n  HostName 127.0.0.1\n  Port {hop1.port}\n"
        f"Host h2\n  HostName 127.0.0.1\n  Port {hop2.port}\n",
    )
    doc = collect(run_cli, cfg, "inner")
    assert doc["exit_code"] == 0, doc
    assert (hop1.connections(), hop2.connections()) == (1, 1)
    assert hop1.commands() == 0 and hop2.commands() == 0


def test_proxycommand_reaches_the_host(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    alpha = std_lab.lab.hosts["alpha"]
    cfg = config(
        tmp_path,
        std_lab,
        f"Host viaproxy\n  HostName 127.0.0.1\n  Port {alpha.port}\n"
        "  ProxyCommand busybox nc %h %p\n",
    )
    doc = collect(run_cli, cfg, "viaproxy")
    assert doc["exit_code"] == 0 and doc["hosts"][0]["status"] == "ok", doc


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("proxy", [False, True], ids=["direct", "proxycommand"])
def test_a_host_leaves_no_descriptor_or_child_behind(
    std_lab: StandardLab, tmp_path: Path, proxy: bool
) -> None:
    """Every host's socket, and a ProxyCommand's three pipes and its process, are closed and
    reaped when the host is done, not whenever the garbage collector next runs:
    a run of hundreds of hosts would otherwise hold them (and the command runs the collector
    seldom, docs/design.md "Start-up"). Counted with the collector off."""
    from platformctl.collector.connector import CollectOptions, Connector

    alpha = std_lab.lab.hosts["alpha"]
    via = "  ProxyCommand busybox nc %h %p\n" if proxy else ""
    cfg = config(tmp_path, std_lab, f"Host a\n  HostName 127.0.0.1\n  Port {alpha.port}\n{via}")
    connector = Connector(CollectOptions(ssh_config=str(cfg)), warn=print)
    try:
        connector("a").run("true")  # imports, key files, known_hosts: once per run
        gc.collect()
        gc.disable()
        before = open_descriptors()
        for _ in range(5):
            assert connector("a").run("echo ok").stdout == b"ok\n"
        after = open_descriptors()
    finally:
        gc.enable()
        connector.close()
    assert after == before
    assert unreaped_child() == 0


@pytest.mark.parametrize("bastion_up", [True, False], ids=["bastion-up", "bastion-down"])
def test_a_bastion_reached_by_proxycommand_leaves_no_descriptor_or_child_behind(
    std_lab: StandardLab, tmp_path: Path, bastion_up: bool
) -> None:
    """The bastion's ProxyCommand is ended, reaped and its three pipes closed when the run
    closes the shared bastion connection (or at once, when the bastion cannot be reached),
    not whenever the garbage collector next runs. Counted with the collector off."""
    from platformctl.collector.connector import CollectOptions, Connector

    alpha, beta = std_lab.lab.hosts["alpha"], std_lab.lab.hosts["beta"]
    hop_port = beta.port if bastion_up else free_port()
    cfg = config(
        tmp_path,
        std_lab,
        f"Host hop\n  HostName 127.0.0.1\n  Port {hop_port}\n  ProxyCommand busybox nc %h %p\n"
        f"Host a\n  HostName 127.0.0.1\n  Port {alpha.port}\n  ProxyJump hop\n",
    )
    options = CollectOptions(ssh_config=str(cfg), connect_timeout=5)
    warm = Connector(options, warn=print)  # imports, key files, known_hosts: once per process
    try:
        with contextlib.suppress(TransportFailure):
            warm("a").run("true")
    finally:
        warm.close()
    gc.collect()
    gc.disable()
    try:
        before = open_descriptors()
        connector = Connector(options, warn=print)
        try:
            if bastion_up:
                assert connector("a").run("echo ok").stdout == b"ok\n"
            else:
                with pytest.raises(TransportFailure, match="via bastion hop"):
                    connector("a").run("echo ok")
        finally:
            connector.close()
        after = open_descriptors()
    finally:
        gc.enable()
    assert after == before
    assert unreaped_child() == 0


def unreaped_child() -> int:
    """The PID of an exited child nobody reaped, else 0 (the lab's own children are alive)."""
    try:
        return os.waitpid(-1, os.WNOHANG)[0]
    except ChildProcessError:
        return 0


def test_a_failing_proxycommand_gives_its_first_stderr_line(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    cfg = config(
        tmp_path,
        std_lab,
        "Host viaproxy\n  HostName 127.0.0.1\n"
        "  ProxyCommand sh -c \"echo 'cloudflared: tunnel %h not found' >&2; echo more >&2; "
        'exit 3"\n',
    )
    (host,) = collect(run_cli, cfg, "viaproxy")["hosts"]
    assert host["status"] == "unreachable"
    assert host["reason"] == "ProxyCommand failed: cloudflared: tunnel 127.0.0.1 not found"


@pytest.fixture
def stalling_host(std_lab: StandardLab, tmp_path: Path) -> LabHost:
    """An sshd whose public-key check hangs (an AuthorizedKeysCommand that sleeps)."""
    empty = tmp_path / "no_keys"
    empty.write_text("")
    return std_lab.lab.start_sshd(
        f"stall-{uuid.uuid4().hex[:6]}",
        None,
        extra="AuthorizedKeysCommand /usr/bin/sleep 20\nAuthorizedKeysCommandUser nobody\n",
        authorized_keys=empty,
    )


def test_authentication_that_never_answers_fails_after_the_timeout(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path, stalling_host: LabHost
) -> None:
    cfg = config(
        tmp_path,
        std_lab,
        f"Host stall\n  HostName 127.0.0.1\n  Port {stalling_host.port}\n",
    )
    (host,) = collect(run_cli, cfg, "stall")["hosts"]
    assert host["status"] == "auth-failed"
    assert host["reason"] == "root@127.0.0.1 did not answer authentication within 2s"


def test_without_an_ssh_client_the_own_resolver_is_used_and_said(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    alpha = std_lab.lab.hosts["alpha"]
    cfg = config(tmp_path, std_lab, f"Host plain\n  HostName 127.0.0.1\n  Port {alpha.port}\n")
    doc = collect(run_cli, cfg, "plain", env={"PATH": str(tmp_path)})
    assert "no ssh client on PATH" in doc["stderr"]
    assert doc["hosts"][0]["status"] == "ok"  # docker runs on the host, not here
