"""Headless Chromium for the report's browser tests, and a small PNG reader for its screenshots.

Chromium comes from Debian's ``chromium`` package (scripts/setup installs it). Each run gets a
fresh profile folder and the switches that keep it from reaching any network service of its
own (updates, sync, field trials). Pillow is not a dependency: the screenshots are plain
8-bit RGB(A) PNGs, which :func:`read_png` decodes with ``zlib`` alone.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI

SWITCHES = (
    "--headless",
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The Chromium binary; skips locally (fails in CI) when it is not installed."""
    found = shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (apt-get install chromium, or run scripts/setup)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="pctl-chromium-") as profile:
        return subprocess.run(
            [chromium(), *SWITCHES, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )


def screenshot(page: Path, width: int, height: int) -> Image:
    """A screenshot of ``page`` in a ``width`` × ``height`` window, decoded."""
    with tempfile.TemporaryDirectory(prefix="pctl-shot-") as folder:
        target = Path(folder) / "shot.png"
        _run(page, f"--screenshot={target}", f"--window-size={width},{height}")
        return read_png(target.read_bytes())


def dump_dom(page: Path, width: int = 1280, height: int = 800) -> str:
    """The DOM of ``page`` after loading in a ``width`` × ``height`` window, serialised by
    Chromium."""
    return _run(page, "--dump-dom", f"--window-size={width},{height}").stdout.decode()


@dataclass(frozen=True)
class Image:
    """Decoded pixels: ``rows[y][x]`` is an ``(r, g, b)`` tuple."""

    width: int
    height: int
    rows: list[list[tuple[int, int, int]]]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """The colour at ``(x, y)``."""
        return self.rows[y][x]

    def box_of(self, colour: tuple[int, int, int]) -> tuple[int, int, int, int] | None:
        """The bounding box ``(x0, y0, x1, y1)`` of the pixels of exactly ``colour``."""
        xs, ys = [], []
        for y, row in enumerate(self.rows):
            hits = [x for x, c in enumerate(row) if c == colour]
            if hits:
                xs += [hits[0], hits[-1]]
                ys.append(y)
        if not ys:
            return None
        return min(xs), min(ys), max(xs), max(ys)

    def count(self, colour: tuple[int, int, int], box: tuple[int, int, int, int]) -> int:
        """How many pixels inside ``box`` are exactly ``colour``."""
        x0, y0, x1, y1 = box
        return sum(1 for row in self.rows[y0 : y1 + 1] for c in row[x0 : x1 + 1] if c == colour)

    def colours(self) -> int:
        """How many distinct colours the image holds."""
        return len({c for row in self.rows for c in row})


def read_png(data: bytes) -> Image:
    """Decode a non-interlaced 8-bit RGB or RGBA PNG (what Chromium writes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, []
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour_type not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, type {colour_type}")
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, prev, channels)
        rows.append([(line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels)])
        prev = line
    return Image(width, height, rows)


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    """Undo one scanline's filter in place (PNG specification, section 9)."""
    n = len(line)
    if kind == 0:
        return
    if kind == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(n):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + pred) & 0xFF
    else:
        raise ValueError(f"bad PNG filter {kind}")
