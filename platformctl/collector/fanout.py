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
"""File descriptors one host in flight holds at most at once: the three pipes of its ``ssh -G``
(or of a local docker), or its socket (with a ``ProxyCommand``, the command's pipes)."""
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
    """A collection running in daemon threads, up to ``jobs`` hosts at once: it starts when
    made, so the caller can do other work while hosts answer; :meth:`wait` for it.

    Made with ``hosts``, those are all it collects. Made open-ended (``hosts=None``), hosts
    are :meth:`add`-ed while the caller still finds them (the manifests being read), and
    :meth:`finish` names the hosts the run needs: only those are waited for and returned.
    """

    def __init__(
        self,
        hosts: Iterable[str] | None,
        factory: TransportFactory,
        script: str,
        jobs: int = 64,
    ) -> None:
        self.taken_at = utc_now()
        self.names: list[str] = []
        self._todo: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._done: queue.Queue[HostResult] = queue.Queue()
        self._added: set[str] = set()
        self._workers = 0
        self._finished = False
        # More workers than file descriptors allow would fail hosts with "too many open
        # files"; past that bound they only wait, so --jobs is capped to it (README).
        self._limit = max(1, min(jobs, max_jobs()))
        self._factory = factory
        self._script = script
        if hosts is not None:
            self.finish(hosts)

    def add(self, host: str) -> None:
        """Start collecting ``host`` (once, however often it is added); before :meth:`finish`."""
        if self._finished:
            raise RuntimeError("Fanout.add() after finish()")
        if host in self._added:
            return
        self._added.add(host)
        self._todo.put(host)
        if self._workers < self._limit:  # at most one worker per host added
            self._workers += 1
            threading.Thread(target=self._work, daemon=True, name="platformctl-collect").start()

    def finish(self, hosts: Iterable[str]) -> None:
        """The hosts this collection is for: those not added yet start now; a host added but
        not named here is not waited for, and its result is left out."""
        if self._finished:
            raise RuntimeError("Fanout.finish() called twice")
        names = sorted(set(hosts))
        for name in names:
            self.add(name)
        self.names = names
        self._release_workers()

    def cancel(self) -> None:
        """Start no more hosts, and let the workers leave after the one they are on (a run
        that ends before :meth:`finish`, on an error)."""
        if self._finished:
            return
        while True:
            try:
                self._todo.get_nowait()
            except queue.Empty:
                break
        self._release_workers()

    def _release_workers(self) -> None:
        """No host is added from now on: one stop sign per worker, after the hosts queued."""
        self._finished = True
        for _ in range(self._workers):
            self._todo.put(None)

    def _work(self) -> None:
        while (name := self._todo.get()) is not None:
            self._done.put(collect_host(name, self._factory, self._script))

    def wait(self, progress: Progress | None = None) -> Collection:
        """Every named host's result, in host order, once all are in (after :meth:`finish`)."""
        if not self._finished:
            raise RuntimeError("Fanout.wait() before finish()")
        wanted = set(self.names)
        results: dict[str, HostResult] = {}
        while len(results) < len(wanted):
            try:
                result = self._done.get(timeout=0.2)
            except queue.Empty:
                if progress:
                    progress(len(results), len(wanted))
                continue
            if result.host in wanted:
                results[result.host] = result
            if progress:
                progress(len(results), len(wanted))
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
