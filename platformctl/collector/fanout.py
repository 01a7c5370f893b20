"""Collect many hosts in parallel: one worker per host at a time, failures as values.

Workers are daemon threads rather than a ThreadPoolExecutor: the executor's threads are joined
at interpreter exit, so Ctrl-C during a run held up by a silent host would wait for that host's
timeout instead of exiting within two seconds (docs/design.md, "Interrupts").
"""

from __future__ import annotations

import queue
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable

from platformctl.clock import utc_now
from platformctl.collector.interface import TransportFactory, TransportFailure
from platformctl.collector.model import Collection, HostResult, HostStatus
from platformctl.collector.script import DockerOutputError, one_line, parse_output

Progress = Callable[[int, int], None]

FDS_PER_HOST = 4
"""File descriptors one host in flight holds at most at once: its socket and the pipe paramiko
makes to select on a channel, or the three pipes of its ``ssh -G`` (or of a local docker)."""
FDS_RESERVED = 32
"""Kept for the rest of the process: the store, stdio, imports, a notification."""


def max_jobs() -> int:
    """The most hosts a run can have in flight without running out of file descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 16
    return max(1, (soft - FDS_RESERVED) // FDS_PER_HOST)


def collect_host(host: str, factory: TransportFactory, script: str) -> HostResult:
    """Collect one host; every failure comes back as a :class:`HostResult`, never raised."""
    start = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - start) * 1000)

    try:
        output = factory(host).run(script)
        parsed = parse_output(output.stdout, output.stderr)
    except TransportFailure as exc:
        return HostResult(host, exc.status, exc.reason, duration_ms=elapsed())
    except DockerOutputError as exc:
        return HostResult(host, HostStatus.ERROR, str(exc), duration_ms=elapsed())
    except Exception as exc:  # a bug or an odd library error must not sink the other hosts
        return HostResult(
            host,
            HostStatus.ERROR,
            f"{type(exc).__name__}: {one_line(str(exc), 160)}",
            duration_ms=elapsed(),
        )
    return HostResult(
        host,
        HostStatus.OK,
        None,
        docker_version=parsed.version,
        storage_driver=parsed.driver,
        duration_ms=elapsed(),
        state=parsed.state,
    )


class Fanout:
    """A collection of ``hosts`` running in daemon threads, up to ``jobs`` at once: it starts
    when made, so the caller can do other work while hosts answer; :meth:`wait` for it."""

    def __init__(
        self, hosts: Iterable[str], factory: TransportFactory, script: str, jobs: int = 64
    ) -> None:
        self.taken_at = utc_now()
        self.names = sorted(set(hosts))
        todo: queue.Queue[str] = queue.Queue()
        for name in self.names:
            todo.put(name)
        self._done: queue.Queue[HostResult] = queue.Queue()

        def worker() -> None:
            while True:
                try:
                    name = todo.get_nowait()
                except queue.Empty:
                    return
                self._done.put(collect_host(name, factory, script))

        # More workers than file descriptors allow would fail hosts with "too many open
        # files"; past that bound they only wait, so --jobs is capped to it (README).
        for _ in range(max(1, min(jobs, len(self.names), max_jobs()))):
            threading.Thread(target=worker, daemon=True, name="platformctl-collect").start()

    def wait(self, progress: Progress | None = None) -> Collection:
        """Every host's result, in host order, once all are in."""
        results: dict[str, HostResult] = {}
        while len(results) < len(self.names):
            try:
                result = self._done.get(timeout=0.2)
            except queue.Empty:
                if progress:
                    progress(len(results), len(self.names))
                continue
            results[result.host] = result
            if progress:
                progress(len(results), len(self.names))
        return Collection(taken_at=self.taken_at, hosts=tuple(results[n] for n in self.names))


def collect(
    hosts: Iterable[str],
    factory: TransportFactory,
    script: str,
    jobs: int = 64,
    progress: Progress | None = None,
) -> Collection:
    """Collect ``hosts`` with up to ``jobs`` at once; results in host order."""
    return Fanout(hosts, factory, script, jobs).wait(progress)


class StderrProgress:
    """A one-line ``collecting: 3/10 hosts`` on stderr, only on a terminal, after a second."""

    def __init__(self, delay: float = 1.0) -> None:
        self.start = time.monotonic()
        self.delay = delay
        self.shown = False
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        """Redraw the line when enabled and the run has taken longer than ``delay``."""
        if not self.enabled or time.monotonic() - self.start < self.delay:
            return
        sys.stderr.write(f"\rcollecting: {done}/{total} hosts")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the progress line, if one was drawn."""
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
