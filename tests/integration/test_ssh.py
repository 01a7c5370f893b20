"""SSH as OpenSSH users expect it: known_hosts policy, Include, ProxyJump, keys."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import Runner, StandardLab, write_module
from tests.lab.lab import LabHost


def single_module(root: Path, std: StandardLab, host: str) -> None:
    name = f"ssh-{uuid.uuid4().hex[:8]}"
    std.lab.run_container(std.lab.engines["alpha"], name, std.images.web_10)
    write_module(
        root,
        "mod",
        {
            "host": host,
            "orchestrator": "docker",
            "container": name,
            "image_observed": std.ref(std.images.web_10),
        },
    )


def ssh_config(
    tmp_path: Path, std: StandardLab, host: LabHost, alias: str, known: Path, extra: str = ""
) -> Path:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {alias}\n  HostName {host.address}\n  Port {host.port}\n  User root\n"
        f"  IdentityFile {std.lab.client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile none\n{extra}"
    )
    return config


@pytest.fixture
def fresh_host(std_lab: StandardLab) -> LabHost:
    """A new sshd in front of alpha's engine whose key nobody knows yet."""
    return std_lab.lab.start_sshd(
        f"fresh-{uuid.uuid4().hex[:6]}", std_lab.lab.engines["alpha"], known=False
    )


def check(run_cli: Runner, root: Path, config: Path) -> dict:
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(root),
        "--ssh-config",
        str(config),
        "--connect-timeout",
        "3",
    )
    doc = result.json()
    doc["code"] = result.code
    return doc


def test_unknown_host_key_is_refused_with_the_keyscan_hint(
    std_lab: StandardLab, fresh_host: LabHost, run_cli: Runner, tmp_path: Path
) -> None:
    single_module(tmp_path, std_lab, "fresh")
    known = tmp_path / "known_hosts"
    known.write_text("")
    doc = check(run_cli, tmp_path, ssh_config(tmp_path, std_lab, fresh_host, "fresh", known))
    (host,) = doc["hosts"]
    assert doc["code"] == 5 and host["status"] == "auth-failed"
    assert f"ssh-keyscan -p {fresh_host.port} 127.0.0.1" in host["reason"]
    assert known.read_text() == ""  # never silently accepted


def test_changed_host_key_is_refused_naming_the_risk(
    std_lab: StandardLab, fresh_host: LabHost, run_cli: Runner, tmp_path: Path
) -> None:
    single_module(tmp_path, std_lab, "fresh")
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    wrong = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    known.write_text(f"[127.0.0.1]:{fresh_host.port} {wrong}\n")
    doc = check(run_cli, tmp_path, ssh_config(tmp_path, std_lab, fresh_host, "fresh", known))
    (host,) = doc["hosts"]
    assert host["status"] == "auth-failed"
    assert "HOST KEY CHANGED" in host["reason"] and "intercepting" in host["reason"]
    assert f"ssh-keygen -R '[127.0.0.1]:{fresh_host.port}'" in host["reason"]
    # StrictHostKeyChecking no lets it through, as OpenSSH does.
    config = ssh_config(
        tmp_path, std_lab, fresh_host, "fresh", known, "  StrictHostKeyChecking no\n"
    )
    assert check(run_cli, tmp_path, config)["code"] == 0


def test_accept_new_records_an_unknown_key_and_then_trusts_only_it(
    std_lab: StandardLab, fresh_host: LabHost, run_cli: Runner, tmp_path: Path
) -> None:
    single_module(tmp_path, std_lab, "fresh")
    known = tmp_path / "known_hosts"
    config = ssh_config(
        tmp_path, std_lab, fresh_host, "fresh", known, "  StrictHostKeyChecking accept-new\n"
    )
    assert check(run_cli, tmp_path, config)["code"] == 0
    assert fresh_host.host_key_pub in known.read_text()
    assert check(run_cli, tmp_path, config)["code"] == 0
    # A different key for the same host is still refused under accept-new.
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known.write_text(
        f"[127.0.0.1]:{fresh_host.port} "
        + " ".join(Path(f"{other}.pub").read_text().split()[:2])
        + "\n"
    )
    doc = check(run_cli, tmp_path, config)
    assert doc["hosts"][0]["status"] == "auth-failed"


def test_accept_new_that_cannot_record_the_key_refuses_the_host_saying_where(
    std_lab: StandardLab, fresh_host: LabHost, run_cli: Runner, tmp_path: Path
) -> None:
    """A key accept-new cannot write down would be "new" again next run, whoever presents it:
    the host is refused with the file named, in one line, and the run goes on."""
    single_module(tmp_path, std_lab, "fresh")
    (tmp_path / "not-a-folder").write_text("")
    known = tmp_path / "not-a-folder" / "known_hosts"
    config = ssh_config(
        tmp_path, std_lab, fresh_host, "fresh", known, "  StrictHostKeyChecking accept-new\n"
    )
    doc = check(run_cli, tmp_path, config)
    (host,) = doc["hosts"]
    assert host["status"] == "auth-failed", host
    assert host["reason"].startswith("cannot record the new host key of [127.0.0.1]:")
    assert str(known) in host["reason"] and doc["code"] == 5


def test_hashed_entries_and_marker_lines_in_known_hosts(
    std_lab: StandardLab, fresh_host: LabHost, run_cli: Runner, tmp_path: Path
) -> None:
    single_module(tmp_path, std_lab, "fresh")
    known = tmp_path / "known_hosts"
    known.write_text(
        "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1n\n"
        f"[127.0.0.1]:{fresh_host.port} {fresh_host.host_key_pub}\n"
    )
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert f"[127.0.0.1]:{fresh_host.port}" not in known.read_text()  # really hashed
    config = ssh_config(tmp_path, std_lab, fresh_host, "fresh", known)
    assert check(run_cli, tmp_path, config)["code"] == 0
    # The same key marked @revoked is refused.
    with open(known, "a") as fh:
        fh.write(f"@revoked * {fresh_host.host_key_pub}\n")
    doc = check(run_cli, tmp_path, config)
    assert doc["hosts"][0]["status"] == "auth-failed" and "revoked" in doc["hosts"][0]["reason"]


def test_include_in_ssh_config_is_resolved(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    single_module(tmp_path, std_lab, "included")
    alpha = std_lab.lab.hosts["alpha"]
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    inner = ssh_config(conf_d, std_lab, alpha, "included", std_lab.lab.known_hosts)
    inner.rename(conf_d / "lab.conf")
    main = tmp_path / "config"
    # Relative Include paths are taken from ~/.ssh, as OpenSSH does, so this one is absolute.
    main.write_text(f"Include {conf_d}/*.conf\n\nHost *\n  ServerAliveInterval 30\n")
    assert check(run_cli, tmp_path, main)["code"] == 0


def test_proxyjump_shares_one_bastion_login_between_targets(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    lab = std_lab.lab
    bastion = lab.start_sshd(f"bastion-{uuid.uuid4().hex[:6]}", None)
    targets = [
        lab.start_sshd(f"inner-{uuid.uuid4().hex[:6]}", lab.engines["alpha"]) for _ in range(3)
    ]
    blocks = []
    for i, target in enumerate(targets):
        name = f"jump-{uuid.uuid4().hex[:8]}"
        lab.run_container(lab.engines["alpha"], name, std_lab.images.web_10)
        write_module(
            tmp_path,
            f"m{i}",
            {
                "host": f"inner{i}",
                "orchestrator": "docker",
                "container": name,
                "image_observed": std_lab.ref(std_lab.images.web_10),
            },
        )
        blocks.append(
            f"Host inner{i}\n  HostName 127.0.0.1\n  Port {target.port}\n  ProxyJump jump\n"
        )
    config = tmp_path / "config"
    config.write_text(
        f"Host jump\n  HostName 127.0.0.1\n  Port {bastion.port}\n"
        + "".join(blocks)
        + f"Host *\n  User root\n  IdentityFile {lab.client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {lab.known_hosts}\n  GlobalKnownHostsFile none\n"
    )
    assert check(run_cli, tmp_path, config)["code"] == 0
    assert bastion.connections() == 1  # one bastion login for all three targets
    assert [t.connections() for t in targets] == [1, 1, 1]
    assert bastion.commands() == 0  # the bastion only forwarded


def test_encrypted_key_without_agent_says_so(
    std_lab: StandardLab, run_cli: Runner, tmp_path: Path
) -> None:
    single_module(tmp_path, std_lab, "locked")
    key = tmp_path / "id_locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret-pass", "-f", str(key)], check=True
    )
    alpha = std_lab.lab.hosts["alpha"]
    config = tmp_path / "config"
    config.write_text(
        f"Host locked\n  HostName 127.0.0.1\n  Port {alpha.port}\n  User root\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {std_lab.lab.known_hosts}\n"
    )
    result = run_cli(
        "drift-check",
        "--json",
        "--root",
        str(tmp_path),
        "--ssh-config",
        str(config),
        env={"SSH_AUTH_SOCK": ""},
    )
    (host,) = result.json()["hosts"]
    assert result.code == 5 and host["status"] == "auth-failed"
    assert "passphrase-protected" in host["reason"] and str(key) in host["reason"]


def _transports(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every paramiko Transport a run makes, recorded as it is made."""
    from platformctl.collector.paramiko_import import import_paramiko

    import_paramiko()
    import paramiko

    made: list[paramiko.Transport] = []
    original = paramiko.Transport.__init__

    def recording(self: paramiko.Transport, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(paramiko.Transport, "__init__", recording)
    return made


@pytest.mark.parametrize(
    ("server_ciphers", "negotiated"),
    [
        ("", "aes128-gcm@openssh.com"),  # the server offers everything: AES-GCM, no HMAC
        ("Ciphers aes256-gcm@openssh.com,aes128-ctr\n", "aes256-gcm@openssh.com"),
        ("Ciphers aes128-ctr\n", "aes128-ctr"),  # no GCM: paramiko's own order follows
    ],
)
def test_aes_gcm_is_preferred_and_a_server_without_it_is_still_reached(
    std_lab: StandardLab,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_ciphers: str,
    negotiated: str,
) -> None:
    from platformctl.collector.connector import CollectOptions, Connector

    lab = std_lab.lab
    host = lab.start_sshd(f"gcm-{uuid.uuid4().hex[:6]}", lab.engines["alpha"], extra=server_ciphers)
    config = tmp_path / "config"
    config.write_text(
        f"Host target\n  HostName 127.0.0.1\n  Port {host.port}\n  User root\n"
        f"  IdentityFile {lab.client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {lab.known_hosts}\n  GlobalKnownHostsFile none\n"
    )
    made = _transports(monkeypatch)
    connector = Connector(CollectOptions(ssh_config=str(config)), warn=lambda _: None)
    try:
        output = connector("target").run("echo reached")
    finally:
        connector.close()
    assert output.stdout == b"reached\n"
    assert [(t.local_cipher, t.remote_cipher) for t in made] == [(negotiated, negotiated)]


def test_a_key_file_is_read_once_per_run_for_all_hosts(
    std_lab: StandardLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import paramiko

    from platformctl.collector.connector import CollectOptions, Connector
    from platformctl.collector.fanout import collect
    from platformctl.collector.script import build_script

    lab = std_lab.lab
    reads: list[str] = []
    original = paramiko.PKey.from_path

    def counting(path: str, *args: object, **kwargs: object) -> paramiko.PKey:
        reads.append(str(path))
        return original(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(paramiko.PKey, "from_path", staticmethod(counting))
    connector = Connector(CollectOptions(ssh_config=str(lab.ssh_config)), warn=lambda _: None)
    try:
        result = collect(["alpha", "beta"], connector, build_script("docker"), jobs=2)
    finally:
        connector.close()
    assert [h.status.value for h in result.hosts] == ["ok", "ok"]
    assert reads == [str(lab.client_key)]


def test_every_packet_goes_out_and_is_acknowledged_at_once(
    std_lab: StandardLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without TCP_NODELAY and quick acknowledgements, a login and a command each wait out
    Linux's delayed acknowledgement (40 ms or more) several times (bench/README.md, one run).
    Checked where paramiko reads: after every SSH packet of a real session, the socket sends
    at once and is in quick-ack mode. A send of ours puts Linux back into delaying until the
    next read, so a packet read while one of our sends was under way (paramiko's reader and
    writer are different threads) is not asked for quick-ack mode."""
    import socket

    from platformctl.collector.connector import CollectOptions, Connector
    from platformctl.collector.paramiko_import import import_paramiko

    import_paramiko()
    import paramiko.packet

    sends = {"begun": 0, "done": 0}
    packets: list[tuple[int, int, bool]] = []
    read, write = paramiko.packet.Packetizer.read_message, paramiko.packet.Packetizer.write_all

    def writing(self: paramiko.packet.Packetizer, out: bytes) -> None:
        sends["begun"] += 1
        try:
            write(self, out)
        finally:
            sends["done"] += 1

    def reading(self: paramiko.packet.Packetizer) -> object:
        begun, done = sends["begun"], sends["done"]
        message = read(self)
        sock = self._Packetizer__socket  # type: ignore[attr-defined]
        nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        quickack = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)
        alone = begun == done == sends["begun"]
        packets.append((nodelay, quickack, alone))
        return message

    monkeypatch.setattr(paramiko.packet.Packetizer, "write_all", writing)
    monkeypatch.setattr(paramiko.packet.Packetizer, "read_message", reading)
    connector = Connector(CollectOptions(ssh_config=str(std_lab.lab.ssh_config)), warn=print)
    try:
        # Output in pieces with pauses: the exchange Linux switches to delayed ACKs for.
        output = connector("alpha").run("echo a; sleep 0.05; echo b >&2; sleep 0.05; echo c")
    finally:
        connector.close()
    assert output.stdout == b"a\nc\n"
    assert {nodelay for nodelay, _, _ in packets} == {1}
    alone = [quickack for _, quickack, alone in packets if alone]
    assert len(alone) >= 8, packets
    assert set(alone) == {1}, packets


def test_a_packet_costs_at_most_one_read_from_the_kernel(
    std_lab: StandardLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paramiko asks for each SSH packet in two parts, its first block and its rest; the host's
    socket reads what the kernel holds and hands the parts out, so a packet costs at most one
    system call, and a burst of them one in all (docs/design.md, "SSH"). The answer still
    arrives whole and in order, both streams."""
    import socket

    from platformctl.collector import ssh
    from platformctl.collector.connector import CollectOptions, Connector
    from platformctl.collector.paramiko_import import import_paramiko

    import_paramiko()
    import paramiko.packet

    counts = {"packets": 0, "kernel reads": 0}
    read_message, kernel_recv = paramiko.packet.Packetizer.read_message, socket.socket.recv

    def reading(self: paramiko.packet.Packetizer) -> object:
        counts["packets"] += 1
        return read_message(self)

    def recv(self: socket.socket, size: int, flags: int = 0) -> bytes:
        data = kernel_recv(self, size, flags)  # a read that times out raises: not counted
        if isinstance(self, ssh._PromptSocket) and data:
            counts["kernel reads"] += 1
        return data

    monkeypatch.setattr(paramiko.packet.Packetizer, "read_message", reading)
    monkeypatch.setattr(socket.socket, "recv", recv)
    connector = Connector(CollectOptions(ssh_config=str(std_lab.lab.ssh_config)), warn=print)
    try:
        output = connector("alpha").run(
            "i=0; while [ $i -lt 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
        )
    finally:
        connector.close()
    assert output.stdout == b"".join(b"out%d\n" % i for i in range(200))
    assert output.stderr == b"".join(b"err%d\n" % i for i in range(200))
    # The session itself is a dozen packets or more (key exchange, login, channel, exit);
    # how many the output adds depends on how sshd finds the pipes when it reads them.
    assert counts["packets"] > 10, counts
    assert counts["kernel reads"] <= counts["packets"], counts


def test_a_host_answers_in_five_packets(
    std_lab: StandardLab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every write of the remote script reaches platformctl as an SSH packet that paramiko
    decrypts and dispatches in Python, and that wakes the host's thread: the script writes
    its protocol line, lets `docker info` print, and writes all the rest at once, and two
    markers on stderr (docs/design.md, "The remote script"). Here the docker calls print
    nothing on stderr, as on a healthy host."""
    from platformctl.collector.connector import CollectOptions, Connector
    from platformctl.collector.paramiko_import import import_paramiko
    from platformctl.collector.script import build_script, parse_output

    import_paramiko()
    import paramiko.channel
    import paramiko.common
    import paramiko.transport

    docker = tmp_path / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        """  "info --format") echo '{"version":"24.0.7","driver":"overlay2"}' ;;\n"""
        f'  "container ls") echo {"c" * 64} ;;\n'
        f"""  "container inspect") echo '{{"image_id":"sha256:{"a" * 64}","id":"{"c" * 64}",'"""
        """'"name":"/web","created":"","started":"","status":"running","running":true,'"""
        """'"image":"nginx:1.25","project":"","service":"","oneoff":"","number":""}' ;;\n"""
        f"""  "image inspect") echo '{{"id":"sha256:{"a" * 64}","tags":[],"digests":[]}}' ;;\n"""
        "esac\n"
    )
    docker.chmod(0o755)
    packets = {"stdout": 0, "stderr": 0}
    feed, feed_extended = paramiko.channel.Channel._feed, paramiko.channel.Channel._feed_extended

    def fed(self: paramiko.channel.Channel, m: object) -> None:
        packets["stdout"] += 1
        feed(self, m)

    def fed_extended(self: paramiko.channel.Channel, m: object) -> None:
        packets["stderr"] += 1
        feed_extended(self, m)

    # The transport dispatches a channel's packets through its table, not the methods.
    table = paramiko.transport.Transport._channel_handler_table
    monkeypatch.setitem(table, paramiko.common.MSG_CHANNEL_DATA, fed)
    monkeypatch.setitem(table, paramiko.common.MSG_CHANNEL_EXTENDED_DATA, fed_extended)
    connector = Connector(CollectOptions(ssh_config=str(std_lab.lab.ssh_config)), warn=print)
    try:
        output = connector("alpha").run(build_script(str(docker)))
    finally:
        connector.close()
    parsed = parse_output(output.stdout, output.stderr)
    assert [c.name for c in parsed.state.containers] == ["web"]
    assert parsed.version == "24.0.7"
    # On stderr the two markers; on stdout the protocol line, info's line and the rest: 3,
    # or fewer where sshd's reads merged them. The script before this one sent 5 and 5.
    assert 1 <= packets["stderr"] <= 2, packets
    assert 1 <= packets["stdout"] <= 3, packets


@pytest.mark.parametrize("debugging", [False, True])
def test_paramiko_spends_nothing_on_debug_lines_nobody_reads(
    std_lab: StandardLab, monkeypatch: pytest.MonkeyPatch, debugging: bool
) -> None:
    """sshd sends a debug message at every key login, which paramiko escapes a byte at a time
    for its log: with paramiko's logger off (as a run leaves it) that is not done; turned on,
    the message and paramiko's own lines are still logged (docs/design.md, "SSH")."""
    import logging

    from platformctl.collector.connector import CollectOptions, Connector
    from platformctl.collector.paramiko_import import import_paramiko

    import_paramiko()
    import paramiko.util

    escaped: list[bytes] = []
    original = paramiko.util.safe_string

    def counting(s: bytes) -> bytes:
        escaped.append(s)
        return original(s)

    monkeypatch.setattr(paramiko.util, "safe_string", counting)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("paramiko")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG if debugging else logging.WARNING)
    connector = Connector(CollectOptions(ssh_config=str(std_lab.lab.ssh_config)), warn=print)
    try:
        assert connector("alpha").run("echo reached").stdout == b"reached\n"
    finally:
        connector.close()
        logger.removeHandler(handler)
        logger.setLevel(level)
    if debugging:
        messages = [r.getMessage() for r in records]
        assert any(m.startswith("Debug msg: ") for m in messages), messages
        assert any(m.startswith("Kex: ") for m in messages), messages
        assert escaped
    else:
        assert escaped == []


def test_an_answer_larger_than_the_window_is_read_without_waiting(
    std_lab: StandardLab, reader_waits: list[bool]
) -> None:
    """The thread reading a host's answer is woken at its end, and every 16 packets before:
    a host may send 2 MiB (paramiko's window) before it waits for us to read, so a reader
    woken only at its 1-second checks would wait out about one check for each of the 24
    windows of a 48 MiB answer (docs/design.md, "SSH"). Counted, not timed: a few checks
    that ran out on a loaded machine are allowed."""
    from platformctl.collector.connector import CollectOptions, Connector

    size = 48 * 1024 * 1024
    connector = Connector(CollectOptions(ssh_config=str(std_lab.lab.ssh_config)), warn=print)
    try:
        output = connector("alpha").run(f"head -c {size} /dev/zero; echo done >&2")
    finally:
        connector.close()
    assert len(output.stdout) == size
    assert output.stderr == b"done\n"
    ran_out = reader_waits.count(False)
    assert ran_out <= 4, f"the reader waited out {ran_out} of its checks"
