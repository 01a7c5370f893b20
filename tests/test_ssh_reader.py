"""Reading a host's answer off its SSH channel: the reading thread is woken when the answer has
ended and every 16 packets, never left asleep while the host waits for it to read
(docs/design.md, "SSH"). A real paramiko channel, fed as its connection's thread feeds it."""

from __future__ import annotations

import threading
import time

import pytest

from platformctl.collector import ssh
from platformctl.collector.paramiko_import import import_paramiko

import_paramiko()
import paramiko  # noqa: E402

PACKET = 32 * 1024  # paramiko's largest packet
WINDOW = 64 * PACKET  # paramiko's window: what a host sends before it waits for a read


def channel() -> paramiko.Channel:
    return paramiko.Channel(1)


def watched(chan: paramiko.Channel) -> ssh._Wake:
    wake = ssh._Wake(chan)
    chan.in_buffer.set_event(wake)  # type: ignore[arg-type]
    chan.in_stderr_buffer.set_event(wake)  # type: ignore[arg-type]
    return wake


def test_the_reader_is_woken_at_every_sixteenth_packet_not_at_each() -> None:
    chan = channel()
    wake = watched(chan)
    for n in range(15):
        (chan.in_buffer if n % 3 else chan.in_stderr_buffer).feed(b"x" * 100)
    assert not wake.event.is_set()
    chan.in_buffer.feed(b"x")
    assert wake.event.is_set()


@pytest.mark.parametrize("end", ["eof", "close"])
def test_the_reader_is_woken_when_the_answer_ends(end: str) -> None:
    chan = channel()
    wake = watched(chan)
    chan.in_buffer.feed(b"the answer\n")
    assert not wake.event.is_set()
    if end == "eof":
        chan._handle_eof(paramiko.Message())
    else:
        with chan.lock:  # as paramiko closes it when the connection dies
            chan._set_closed()
    assert wake.event.is_set()


def test_a_full_window_waiting_before_the_reader_starts_is_read_at_once(
    reader_waits: list[bool],
) -> None:
    """A command that streams at once can fill the whole window before the reading thread
    gives the buffers its event; the host then sends nothing more until it reads, so the
    reader must not wait for a 16th packet first."""
    chan = channel()
    for _ in range(WINDOW // PACKET):
        chan._feed(b"x" * PACKET)

    def host() -> None:
        # The host sends its end only once its window is open again: once we have read.
        while len(chan.in_buffer):
            time.sleep(0.01)
        chan.exit_status = 0
        chan.status_event.set()
        chan._handle_eof(paramiko.Message())

    sender = threading.Thread(target=host, daemon=True)
    sender.start()
    output = ssh._drain(chan, time.monotonic() + 30, 30)
    sender.join(5)
    assert len(output.stdout) == WINDOW
    assert False not in reader_waits, f"the reader waited out its poll: {reader_waits}"
