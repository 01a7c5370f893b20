"""Time at the edges: every timestamp is an aware UTC ``datetime`` inside platformctl, and
text (``2026-11-27T10:00:00Z``) only where it is stored or printed."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time in UTC, to the second (the resolution every stored time has)."""
    return datetime.now(UTC).replace(microsecond=0)


def to_iso(moment: datetime) -> str:
    """``2026-11-27T10:00:00Z``: the one form every stored and printed timestamp takes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset; none means UTC) as an aware datetime in UTC.

    Raises ``ValueError`` for anything else, a moment whose offset takes it out of the range
    of dates included (``0001-01-01T00:00:00+14:00``: converting it, as every output does,
    raised OverflowError).
    """
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if not value.tzinfo:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise OutOfRange(f"{text!r} is past the dates there are (years 1 to 9999)") from None


class OutOfRange(ValueError):
    """A timestamp that is valid text but no date in UTC (years 1 to 9999)."""
