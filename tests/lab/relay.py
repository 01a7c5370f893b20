"""A userspace TCP relay for the lab, with an optional added delay (this kernel has no netem).

    python -m tests.lab.relay --map LISTEN=TARGET [--map ...] [--delay-ms RTT]

LISTEN is ``HOST:PORT`` or ``fd:N`` (a listening socket inherited from the parent, which lets a
relay started inside a network namespace accept connections from outside it). TARGET is
``HOST:PORT``. ``--delay-ms`` adds that much round-trip time: half on each direction, every chunk
delivered in order once its time has come. All addresses are loopback addresses of this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import time


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction, holding every chunk back by ``delay`` seconds."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen: socket.socket, target: tuple[str, int], delay: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            pump(reader, up_writer, delay), pump(up_reader, writer, delay), return_exceptions=True
        )

    server = await asyncio.start_server(handle, sock=listen, backlog=256)
    async with server:
        await server.serve_forever()


def listener(spec: str) -> socket.socket:
    if spec.startswith("fd:"):
        sock = socket.socket(fileno=int(spec[3:]))
    else:
        host, port = spec.rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(256)
    sock.setblocking(False)
    return sock


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--map", action="append", required=True, metavar="LISTEN=TARGET")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added round-trip time")
    args = parser.parse_args()
    delay = args.delay_ms / 2000.0
    tasks = []
    for mapping in args.map:
        listen, target = mapping.split("=", 1)
        host, port = target.rsplit(":", 1)
        tasks.append(serve(listener(listen), (host, int(port)), delay))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    running = [asyncio.create_task(t) for t in tasks]
    await stop
    for task in running:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
