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
    "make_factory",
]


def make_factory(
    ssh_config: str | None, connect_timeout: float, command_timeout: float
) -> TransportFactory:
    """The real transport factory: local hosts run locally, every other alias over SSH."""
    from platformctl.collector.local import LocalTransport
    from platformctl.collector.ssh import SshSettings, SshTransport
    from platformctl.collector.sshconfig import SshConfigFile
    from platformctl.declared.model import LOCAL_HOSTS

    settings = SshSettings(
        SshConfigFile.default(ssh_config),
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
    )

    def factory(host: str) -> Transport:
        if host in LOCAL_HOSTS:
            return LocalTransport(command_timeout)
        return SshTransport(host, settings)

    return factory
