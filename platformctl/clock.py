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
    """An ISO 8601 timestamp (``Z`` or an offset; none means UTC) as an aware datetime.

    Raises ``ValueError`` for anything else.
    """
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
