"""The seam between the collector and the ways of reaching a host."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from platformctl.collector.model import HostStatus


class TransportFailure(Exception):
    """Reaching or talking to one host failed; ``status`` says how, ``reason`` in one line."""

    def __init__(self, status: HostStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Output(NamedTuple):
    """What the remote script printed, stream by stream."""

    stdout: bytes
    stderr: bytes


class Transport(Protocol):
    """Runs the constant remote script on one host and returns everything it printed."""

    def run(self, script: str) -> Output:
        """Run ``script`` with ``sh``; raise :class:`TransportFailure` on failure."""
        ...


TransportFactory = Callable[[str], Transport]
"""Builds the transport for a host alias."""
