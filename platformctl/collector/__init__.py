"""The collector: reads live container state from hosts, over SSH or locally."""

from __future__ import annotations

from platformctl.collector.interface import Transport, TransportFactory, TransportFailure
from platformctl.collector.model import (
    Collection,
    Container,
    HostResult,
    HostState,
    HostStatus,
    Image,
)

__all__ = [
    "Collection",
    "Container",
    "HostResult",
    "HostState",
    "HostStatus",
    "Image",
    "Transport",
    "TransportFactory",
    "TransportFailure",
    "Connector",
]


class Connector:
    """The real transport factory: local hosts run locally, every other alias over SSH.

    Call it with a host alias for that host's transport; :meth:`close` ends what the run's
    transports share (jump-host connections).
    """

    def __init__(
        self, ssh_config: str | None, connect_timeout: float, command_timeout: float
    ) -> None:
        from platformctl.collector.ssh import SshSettings
        from platformctl.collector.sshconfig import SshConfigFile

        self.command_timeout = command_timeout
        self.settings = SshSettings(
            SshConfigFile.default(ssh_config),
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )

    def __call__(self, host: str) -> Transport:
        from platformctl.collector.local import LocalTransport
        from platformctl.collector.ssh import SshTransport
        from platformctl.declared.model import LOCAL_HOSTS

        if host in LOCAL_HOSTS:
            return LocalTransport(self.command_timeout)
        return SshTransport(host, self.settings)

    def close(self) -> None:
        """Close connections shared between hosts."""
        self.settings.close()
