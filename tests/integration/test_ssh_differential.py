"""A host your ssh reaches, platformctl reaches: every config in :mod:`ssh_cases` is run
through the real OpenSSH client (``ssh -o BatchMode=yes ALIAS CMD``) and through platformctl's
SSH transport against the same real sshd instances, and the verdicts must agree: reached or
not, and when reached, which sshd (port) and which key.

Set ``PCTL_DIFF_RESOLVER=builtin`` to run platformctl with its own resolver instead of
``ssh -G`` (the measurement in docs/ssh.md); the disagreements are then expected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from platformctl.collector.connector import CollectOptions, Connector
from platformctl.collector.interface import TransportFailure
from platformctl.collector.ssh import SshSettings
from platformctl.collector.sshconfig import SshConfigFile
from tests.conftest import IN_CI
from tests.integration.ssh_cases import BASE, CASES, Case
from tests.lab.lab import Lab, LabHost, LabUnavailable, free_port

# What the remote side prints: the key's name (from authorized_keys' environment=) and the
# port of the sshd that took the login.
REMOTE = 'echo "${PCTL_KEY:-?}@${SSH_CONNECTION##* }"'
TOOLS = ("ssh", "sshd", "ssh-keygen", "ssh-agent", "ssh-add", "busybox")
BUILTIN = os.environ.get("PCTL_DIFF_RESOLVER") == "builtin"
# OpenSSH 9.x prefers the post-quantum sntrup761 key exchange, ~0.3 s of CPU per login on this
# machine; the key exchange has no bearing on which host, port and key a config selects, and
# paramiko uses curve25519 too.
FAST_KEX = ("-o", "KexAlgorithms=curve25519-sha256")


@dataclass
class DiffLab:
    """Three sshd, keys, an agent, and the values the case placeholders stand for."""

    lab: Lab
    hosts: dict[str, LabHost]
    keys: Path
    values: dict[str, str]
    agent: subprocess.Popen[bytes]

    def env(self, agent: bool) -> dict[str, str]:
        """The environment both clients run with."""
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env["PCTL_DIFF_KEYS"] = str(self.keys)
        env["PCTL_DIFF_AGENT"] = self.values["agent"]
        if agent:
            env["SSH_AUTH_SOCK"] = self.values["agent"]
        return env

    def port_name(self, port: str) -> str:
        return next((n for n, h in self.hosts.items() if str(h.port) == port), port)


def _keygen(path: Path, passphrase: str = "") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _start(keys: Path) -> DiffLab:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise LabUnavailable(f"missing for the ssh differential test: {', '.join(missing)}")
    if os.geteuid() != 0:
        raise LabUnavailable("the ssh differential test starts sshd and must run as root")
    lab = Lab()
    try:
        for name in ("k1", "k2", "k3", "kx"):
            _keygen(keys / name)
        _keygen(keys / "kenc", "s3cret-pass")
        authorized = lab.root / "authorized_keys"
        authorized.write_text(
            "".join(
                f'environment="PCTL_KEY={label}" {(keys / f"{name}.pub").read_text()}'
                for name, label in (("k1", "k1"), ("k2", "k2"), ("k3", "k3"), ("kenc", "k4"))
            )
        )
        hosts = {
            name: lab.start_sshd(
                f"diff-{name}",
                None,
                extra="PermitUserEnvironment PCTL_KEY\n",
                authorized_keys=authorized,
            )
            for name in ("s1", "s2", "s3")
        }
        sock = lab.root / "agent.sock"
        agent = subprocess.Popen(
            ["ssh-agent", "-D", "-a", str(sock)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        lab.procs.append(agent)  # ended by PID in lab.stop()
        for _ in range(100):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        askpass = lab.root / "askpass"
        askpass.write_text("#!/bin/sh\necho s3cret-pass\n")
        askpass.chmod(0o700)
        env = {
            **os.environ,
            "SSH_AUTH_SOCK": str(sock),
            "SSH_ASKPASS": str(askpass),
            "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": ":0",
        }
        for name in ("k3", "kenc"):
            subprocess.run(
                ["ssh-add", "-q", str(keys / name)],
                env=env,
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )
        known = "".join(f"[127.0.0.1]:{h.port} {h.host_key_pub}\n" for h in hosts.values())
        values = {
            **{n: str(h.port) for n, h in hosts.items()},
            **{f"hk{n[1]}": h.host_key_pub for n, h in hosts.items()},
            **{n: str(keys / n) for n in ("k1", "k2", "k3", "kx", "kenc")},
            "agent": str(sock),
            "refused": str(free_port()),
            "silent": str(lab.silent_listener()),
            "known_all": known,
        }
        return DiffLab(lab, hosts, keys, values, agent)
    except BaseException:
        lab.stop()
        raise


def _materialize(case: Case, env: DiffLab, folder: Path) -> Path:
    """Write the case's config and files into ``folder``; returns the config path."""
    folder.mkdir(parents=True)
    values = {
        **env.values,
        "dir": str(folder),
        "kh": str(folder / "known_hosts"),
        "none_known": str(folder / "no_known_hosts"),
    }

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return text.replace("{{", "{").replace("}}", "}")

    (folder / "known_hosts").write_text(env.values["known_all"])
    for name, content in case.files.items():
        path = folder / fill(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "copy:hashed":
            path.write_text(env.values["known_all"])
            subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(path)], capture_output=True)
        elif content.startswith("copy:"):
            shutil.copyfile(env.keys / content[len("copy:") :], path)
            path.chmod(0o600)
        else:
            path.write_text(fill(content))
    config = folder / "config"
    config.write_text(fill(case.config + (BASE if case.base else "")))
    return config


def _verdict(output: str, env: DiffLab) -> str:
    key, _, port = output.strip().partition("@")
    return f"reached {env.port_name(port)} with {key}"


def _via_ssh(case: Case, env: DiffLab, folder: Path) -> str:
    config = _materialize(case, env, folder)
    try:
        proc = subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", *FAST_KEX, "--", case.alias, REMOTE],
            capture_output=True,
            text=True,
            env=env.env(case.agent_env),
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "not reached (ssh: timeout)"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"not reached (ssh: {last})"
    return _verdict(proc.stdout, env)


def _via_platformctl(case: Case, env: DiffLab, folder: Path) -> str:
    config = _materialize(case, env, folder)
    options = CollectOptions(ssh_config=str(config), connect_timeout=5, command_timeout=10)
    connector = Connector(options, warn=lambda _: None)
    if BUILTIN:
        connector.settings = SshSettings(SshConfigFile(config), 5, 10)
    try:
        out = connector(case.alias).run(REMOTE)
    except TransportFailure as exc:
        return f"not reached (platformctl: {exc.status}: {exc.reason})"
    except Exception as exc:
        return f"not reached (platformctl: {type(exc).__name__}: {exc})"
    finally:
        connector.close()
    return _verdict(out.stdout.decode(), env)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, str]]]:
    """Every case through both clients, in parallel (the agent-environment cases alone,
    since platformctl reads ``SSH_AUTH_SOCK`` from its own process environment)."""
    keys = tmp_path_factory.mktemp("keys")
    try:
        env = _start(keys)
    except LabUnavailable as exc:
        if IN_CI:
            pytest.fail(f"ssh differential test cannot run in CI: {exc}")
        pytest.skip(f"ssh differential test skipped: {exc}")
    base = tmp_path_factory.mktemp("cases")
    saved = {k: os.environ.get(k) for k in ("SSH_AUTH_SOCK", "PCTL_DIFF_KEYS", "PCTL_DIFF_AGENT")}

    def both(case: Case) -> tuple[str, str]:
        return (
            _via_ssh(case, env, base / case.id / "ssh"),
            _via_platformctl(case, env, base / case.id / "platformctl"),
        )

    def set_env(agent: bool) -> None:
        for key in saved:
            os.environ.pop(key, None)
        os.environ.update({k: v for k, v in env.env(agent).items() if k in saved})

    results: dict[str, tuple[str, str]] = {}
    try:
        for agent in (False, True):
            set_env(agent)
            todo = [c for c in CASES if c.agent_env == agent]
            with ThreadPoolExecutor(max_workers=6) as pool:
                for case, pair in zip(todo, pool.map(both, todo), strict=True):
                    results[case.id] = pair
        yield results
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value
        env.lab.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_platformctl_reaches_what_ssh_reaches(
    case: Case, verdicts: dict[str, tuple[str, str]]
) -> None:
    ssh, ours = verdicts[case.id]
    ssh_short = ssh.split(" (", 1)[0]
    ours_short = ours.split(" (", 1)[0]
    assert ours_short == ssh_short, f"ssh: {ssh}\nplatformctl: {ours}"


def test_the_differential_covers_enough_configs() -> None:
    assert len(CASES) >= 80
