"""The local transport: ``localhost`` / ``local`` hosts run the script here, without SSH."""

from __future__ import annotations

import subprocess

from platformctl.collector.interface import Output, TransportFailure
from platformctl.collector.model import HostStatus
from platformctl.collector.script import MAX_OUTPUT_BYTES, MAX_STDERR_BYTES


class LocalTransport:
    """Runs the script with ``sh -s`` on this machine, bounded by the command timeout."""

    def __init__(self, command_timeout: float) -> None:
        self.command_timeout = command_timeout

    def run(self, script: str) -> Output:
        """Run the script; its stdin is the script itself."""
        try:
            proc = subprocess.run(
                ["sh", "-s"],
                input=script.encode(),
                capture_output=True,
                timeout=self.command_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TransportFailure(
                HostStatus.ERROR, f"docker did not answer within {self.command_timeout:g}s"
            ) from None
        except OSError as exc:
            raise TransportFailure(HostStatus.ERROR, f"cannot run sh: {exc}") from None
        if len(proc.stdout) > MAX_OUTPUT_BYTES:
            raise TransportFailure(HostStatus.ERROR, "docker output exceeds the size limit")
        return Output(proc.stdout, proc.stderr[:MAX_STDERR_BYTES])
