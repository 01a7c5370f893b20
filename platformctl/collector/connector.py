"""The transport factory of a real run: local hosts run locally, every other alias over SSH."""

from __future__ import annotations

from dataclasses import dataclass

from platformctl.collector.interface import Transport

LOCAL_HOSTS = frozenset({"localhost", "local"})
"""Host names that mean this machine: collected without SSH."""


@dataclass(frozen=True)
class CollectOptions:
    """SSH config, docker invocation, parallelism and timeouts of one collection run.

    These defaults are the only ones: the CLI's options show them rather than repeat them.
    """

    ssh_config: str | None = None
    docker_command: str = "docker"
    jobs: int = 16
    connect_timeout: float = 10.0
    command_timeout: float = 60.0


class Connector:
    """Builds the transport for a host alias; :meth:`close` ends what the run's transports
    share (jump-host connections)."""

    def __init__(self, options: CollectOptions) -> None:
        from platformctl.collector.ssh import SshSettings
        from platformctl.collector.sshconfig import SshConfigFile

        self.command_timeout = options.command_timeout
        self.settings = SshSettings(
            SshConfigFile.default(options.ssh_config),
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
        """Close connections shared between hosts."""
        self.settings.close()
