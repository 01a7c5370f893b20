"""What the run's shared bastion connections and a ProxyCommand's pipes do at their ends: a
bastion opened while the run closes is closed too, a dead one is ended before it is
replaced, chained ones close outermost first, and a proxy that has exited reads as the end of
the connection (not as nothing, again and again, until the timeout)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from platformctl.collector import ssh
from platformctl.collector.interface import TransportFailure
from platformctl.collector.paramiko_import import import_paramiko

import_paramiko()
import paramiko  # noqa: E402

KEY = ("bastion", "")


class FakeTransport:
    """The part of paramiko's Transport the run's bastion bookkeeping uses."""

    def __init__(self, log: list[str] | None = None, name: str = "") -> None:
        self.closed = False
        self.alive = True
        self.sock: Any = None
        self.log = log
        self.name = name

    def close(self) -> None:
        self.closed = True
        if self.log is not None:
            self.log.append(self.name)

    def is_active(self) -> bool:
        return self.alive and not self.closed


class FakeProxy(ssh._ProxySocket):
    def __init__(self) -> None:  # no process: only release() is asked of it here
        self.released = False

    def release(self) -> None:
        self.released = True


def settings() -> ssh.SshSettings:
    return ssh.SshSettings(resolver=None)  # type: ignore[arg-type]


def test_a_bastion_that_finishes_opening_after_the_run_closed_is_closed_not_kept() -> None:
    run = settings()
    opening, go_on = threading.Event(), threading.Event()
    late = FakeTransport()
    late.sock = FakeProxy()
    outcome: list[object] = []

    def opener() -> FakeTransport:
        opening.set()
        go_on.wait(10)
        return late

    def host() -> None:
        try:
            outcome.append(run.jump(KEY, opener))  # type: ignore[arg-type]
        except TransportFailure as exc:
            outcome.append(exc)

    thread = threading.Thread(target=host)
    thread.start()
    assert opening.wait(10)
    run.close()  # Ctrl-C: the run closes while a host is still opening its bastion
    go_on.set()
    thread.join(10)
    assert late.closed and late.sock.released
    assert isinstance(outcome[0], TransportFailure)
    with pytest.raises(TransportFailure, match="the run ended"):
        run.jump(("another", ""), FakeTransport)  # type: ignore[arg-type]


def test_a_dead_bastion_is_ended_before_a_new_one_replaces_it() -> None:
    run = settings()
    first = FakeTransport()
    first.sock = FakeProxy()
    assert run.jump(KEY, lambda: first) is first  # type: ignore[arg-type,return-value]
    first.alive = False  # the bastion dropped the connection
    second = FakeTransport()
    assert run.jump(KEY, lambda: second) is second  # type: ignore[arg-type,return-value]
    assert first.closed and first.sock.released
    run.close()
    assert second.closed


def test_chained_bastions_close_each_before_the_one_it_runs_through() -> None:
    run = settings()
    log: list[str] = []
    outer = FakeTransport(log, "first hop")
    inner = FakeTransport(log, "second hop, reached through the first")
    run.jump(("first", ""), lambda: outer)  # type: ignore[arg-type,return-value]
    run.jump(("second", "first"), lambda: inner)  # type: ignore[arg-type,return-value]
    run.close()
    assert log == ["second hop, reached through the first", "first hop"]


def proxy(command: str) -> ssh._ProxySocket:
    sock = ssh._ProxySocket(paramiko.ProxyCommand(command))
    sock.settimeout(10)
    return sock


def test_a_proxy_that_has_exited_reads_as_the_end() -> None:
    """paramiko's own read would wait out the 10 s timeout, reading nothing in a loop, and
    then raise a timeout: its transport thread never learns the proxy is gone."""
    sock = proxy("printf abc")
    try:
        got = b""
        while chunk := sock.recv(64):
            got += chunk
        assert got == b"abc"
    finally:
        sock.release()
