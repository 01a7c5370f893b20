"""The local transport: ``localhost`` / ``local`` hosts run the script here, without SSH."""

from __future__ import annotations

import os
import signal
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
            # A session of its own, so a timeout ends docker and anything it started: killing
            # only `sh` would leave a child holding the pipes open until it finishes.
            proc = subprocess.Popen(
                ["sh", "-s"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportFailure(HostStatus.ERROR, f"cannot run sh: {exc}") from None
        try:
            stdout, stderr = proc.communicate(script.encode(), timeout=self.command_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise TransportFailure(
                HostStatus.ERROR,
                f"the docker command did not finish within {self.command_timeout:g}s",
            ) from None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if len(stdout) > MAX_OUTPUT_BYTES:
            raise TransportFailure(
                HostStatus.ERROR, f"docker output exceeds {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB"
            )
        return Output(stdout, stderr[:MAX_STDERR_BYTES])
