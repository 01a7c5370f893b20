"""The transport factory of a real run: local hosts run locally, every other alias over SSH."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from platformctl.collector.interface import Transport

if TYPE_CHECKING:
    from platformctl.collector.sshconfig import Resolver

LOCAL_HOSTS = frozenset({"localhost", "local"})
"""Host names that mean this machine: collected without SSH."""


@dataclass(frozen=True)
class CollectOptions:
    """SSH config, docker invocation, parallelism and timeouts of one collection run.

    These defaults are the only ones: the CLI's options show them rather than repeat them.
    """

    ssh_config: str | None = None
    docker_command: str = "docker"
    jobs: int = 64
    connect_timeout: float = 10.0
    command_timeout: float = 60.0


class Connector:
    """Builds the transport for a host alias; :meth:`close` ends what the run's transports
    share (jump-host connections)."""

    def __init__(self, options: CollectOptions, warn: Callable[[str], None] | None = None) -> None:
        from platformctl.collector.ssh import SshSettings

        self.command_timeout = options.command_timeout
        self.resolver = make_resolver(options.ssh_config, options.connect_timeout, warn or _stderr)
        self.settings = SshSettings(
            self.resolver,
            connect_timeout=options.connect_timeout,
            command_timeout=options.command_timeout,
        )

    def __call__(self, host: str) -> Transport:
        from platformctl.collector.local import LocalTransport
        from platformctl.collector.ssh import SshTransport

        if host in LOCAL_HOSTS:
            return LocalTransport(self.command_timeout)
        return SshTransport(host, self.settings)

    def close(self) -> None:
        """Close connections shared between hosts; keep the resolver's new answers."""
        try:
            self.settings.close()
        finally:
            self.resolver.close()


def make_resolver(ssh_config: str | None, timeout: float, warn: Callable[[str], None]) -> Resolver:
    """OpenSSH's own resolution (``ssh -G``) where an ``ssh`` client is installed; else
    platformctl's resolver, saying so through ``warn`` (docs/ssh.md)."""
    from platformctl.collector.openssh import OpenSshResolver, find_ssh
    from platformctl.collector.sshconfig import SshConfigFile, explicit_config
    from platformctl.collector.sshgcache import SshGCache

    ssh = find_ssh()
    if ssh is None:
        warn(
            "no ssh client on PATH: resolving the ssh config with platformctl's own resolver "
            "(README, SSH: differences from OpenSSH)"
        )
        return SshConfigFile.default(ssh_config)
    # Not parsed here: a config that only OpenSSH understands must not fail the run.
    config = explicit_config(ssh_config)
    return OpenSshResolver(ssh, config, max(10.0, timeout), SshGCache.open(ssh, config))


def _stderr(message: str) -> None:
    sys.stderr.write(f"platformctl: {message}\n")
