"""The local transport: ``localhost`` / ``local`` hosts run the script here, without SSH.

Bounded like the SSH transport (docs/design.md, "Bounds"): the output cap is enforced while
reading, and the command timeout ends the whole process group and stops waiting for its pipes.
``communicate()`` gives neither: it buffers everything before any cap can be checked, and it
waits for EOF, which a grandchild that left the process group (``setsid``) and kept the pipes
open can postpone forever.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time

from platformctl.collector.interface import Output, TransportFailure
from platformctl.collector.model import HostStatus
from platformctl.collector.script import MAX_OUTPUT_BYTES, MAX_STDERR_BYTES

_CHUNK = 1 << 16


class LocalTransport:
    """Runs the script with ``sh -s`` on this machine, bounded by the command timeout."""

    def __init__(self, command_timeout: float) -> None:
        self.command_timeout = command_timeout

    def run(self, script: str) -> Output:
        """Run the script; its stdin is the script itself."""
        try:
            # A session of its own, so a timeout ends docker and anything it started in the
            # same group with one killpg.
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
            return _exchange(proc, script.encode(), self.command_timeout)
        finally:
            _end(proc)


def _exchange(proc: subprocess.Popen[bytes], script: bytes, timeout: float) -> Output:
    """Feed ``script`` to ``proc`` and read both streams until ``sh`` exits and its pipes are
    drained, within ``timeout`` and the output caps."""
    assert proc.stdin and proc.stdout and proc.stderr
    deadline = time.monotonic() + timeout
    out = bytearray()
    err = bytearray()
    pending = memoryview(script)
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while True:
            # Once sh has exited, everything its foreground commands wrote is already in the
            # pipes: read what is there and stop, whoever else still holds them open.
            exited = _exited(proc)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportFailure(
                    HostStatus.ERROR,
                    f"the docker command did not finish within {timeout:g}s",
                )
            wait = 0.0 if exited else min(remaining, 0.05)
            if not sel.get_map():
                if exited:
                    break
                time.sleep(wait)  # both streams at EOF: only sh's exit is left to wait for
                continue
            events = sel.select(wait)
            if exited and not events:
                break
            for key, _ in events:
                if key.fileobj is proc.stdin:
                    pending = _write(proc, pending, sel)
                    continue
                buffer: bytearray = key.data
                try:
                    data = os.read(key.fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                if buffer is out:
                    if len(out) + len(data) > MAX_OUTPUT_BYTES:
                        raise TransportFailure(
                            HostStatus.ERROR,
                            f"docker output exceeds {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB",
                        )
                    out += data
                elif len(err) < MAX_STDERR_BYTES:
                    # stderr beyond its cap is read and dropped, so the writer never blocks.
                    err += data[: MAX_STDERR_BYTES - len(err)]
    return Output(bytes(out), bytes(err))


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``sh`` has exited, without reaping it: until :func:`_end` reaps it, its PID
    (and so the process group ID that :func:`_end` kills) cannot be reused."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _write(
    proc: subprocess.Popen[bytes], pending: memoryview, sel: selectors.BaseSelector
) -> memoryview:
    """Write what the pipe takes of the script; close stdin once it is all written."""
    assert proc.stdin
    try:
        written = os.write(proc.stdin.fileno(), pending)
    except BlockingIOError:
        return pending
    except BrokenPipeError:
        written = len(pending)  # sh is gone; its exit status and output say why
    pending = pending[written:]
    if not pending:
        sel.unregister(proc.stdin)
        proc.stdin.close()
    return pending


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of the process group, reap ``sh`` and close our pipe ends.

    Only ``sh`` is waited for: a descendant that left the group is beyond our reach, and
    closing our ends makes any further writes of its fail rather than wait for us.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
