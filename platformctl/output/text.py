"""What every human-readable output shares: safe text, tables, short digests, durations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from platformctl.clock import utc_now
from platformctl.declared.reference import ImageRef, short_digest

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# Characters Python counts as printable that a terminal shows as nothing or as a blank: the
# printable default-ignorable code points (combining grapheme joiner, Hangul and Khmer fillers,
# Mongolian and other variation selectors) and the blank Braille pattern. Shown as escapes,
# like the zero-width space.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
) | frozenset(map(chr, (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0))))


def clean(text: str) -> str:
    """``text`` with every character Python counts as not printable shown as an escape
    (``\\x1b``, ``\\n``, ``\\u200b``), never emitted.

    Every string a host or a repository controls passes through here before it reaches a
    terminal: a container name holding ESC sequences must not clear the screen, retitle the
    terminal or forge table rows, a bidi control must not reorder a line, and an invisible
    character (a zero-width space, a soft hyphen, a tag character) must not make two names
    look the same. A backslash is shown doubled, so ``\\x1b`` written in a name never reads
    as the escape of an ESC. JSON output escapes the controls by itself.
    """
    # ASCII text without a control or a backslash, nearly every cell of a table, is returned
    # as it is (isascii is a flag of the string, not a scan).
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text
    return "".join(map(_shown, text))


def _shown(ch: str) -> str:
    if ch.isprintable() and ch != "\\" and ch not in _INVISIBLE:
        return ch
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """The width of each column: its longest cell."""
    return [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]


def row(cells: Sequence[str], sizes: Sequence[int], styles: Mapping[int, str] | None = None) -> str:
    """One table line: cells padded to ``sizes``, two spaces apart; ``styles`` maps a column
    to an SGR colour code applied after padding, so colour never shifts the columns."""
    padded = [c.ljust(w) for c, w in zip(cells, sizes, strict=True)]
    for column, code in (styles or {}).items():
        padded[column] = f"\033[{code}m{padded[column]}\033[0m"
    return "  ".join(padded).rstrip()


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A header and rows as aligned lines."""
    sizes = widths(header, rows)
    return [row(r, sizes) for r in [header, *rows]]


def short_ref(ref: ImageRef | None, digest: str | None = None) -> str:
    """``name:tag@123456789abc``: last path component, tag, 12-character digest."""
    if ref is None:
        return "-"
    text = ref.short_name
    if ref.tag:
        text += f":{ref.tag}"
    digest = digest or ref.digest
    if digest:
        text += "@" + short_digest(digest)
    return text


def duration(seconds: int) -> str:
    """``3d 4h`` / ``5h 12m`` / ``40m``; under a minute, ``12s``. A moment in the future (a
    snapshot from a clock running ahead) is ``0s``, not a negative count of seconds."""
    seconds = max(0, seconds)
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def age(since: datetime | None, now: datetime | None = None) -> str:
    """The time elapsed since ``since``, as :func:`duration`; ``-`` for None."""
    if since is None:
        return "-"
    return duration(int(((now or utc_now()) - since).total_seconds()))
