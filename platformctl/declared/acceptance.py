"""``spec.runtime.drift_accepted``: parsing a deliberate, expiring acceptance of drift.

An acceptance turns a red module green, so a malformed one must never be read generously: a
missing reason or expiry, a date that does not exist, a digest that is not one, or a key we do
not know (a typo of ``digest`` would silently widen what is accepted) makes the module invalid
(docs/design.md, "Accepted drift").
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from platformctl.clock import OutOfRange, from_iso, to_iso
from platformctl.declared.model import Acceptance
from platformctl.declared.reference import SHA256_RE

KEYS = ("reason", "until", "digest")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_FORMS = "a date (2026-12-15) or an ISO time (2026-12-15T12:00:00Z)"


class AcceptanceProblem(ValueError):
    """A ``drift_accepted`` block that cannot be used; the message says where and what."""


def parse_acceptance(where: str, value: Any) -> Acceptance | None:
    """The acceptance ``value`` describes (None when absent); ``where`` prefixes every problem
    (``<file>: spec.runtime.drift_accepted``)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise AcceptanceProblem(
            f"{where} must be a mapping with reason and until, got {type(value).__name__}"
        )
    unknown = sorted(str(k) for k in value if k not in KEYS)
    if unknown:
        raise AcceptanceProblem(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(KEYS)})")
    reason = value.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise AcceptanceProblem(f"{where}.reason is required: say why the drift is accepted")
    until, expires = _until(where, value.get("until"))
    digest = value.get("digest")
    if digest is not None and (not isinstance(digest, str) or not SHA256_RE.match(digest)):
        raise AcceptanceProblem(
            f"{where}.digest {digest!r} is not a digest (sha256: and 64 lowercase hex digits)"
        )
    # A folded or multi-line reason is shown on one table line.
    return Acceptance(reason=" ".join(reason.split()), until=until, expires=expires, digest=digest)


def _until(where: str, value: Any) -> tuple[str, datetime]:
    """The normalized ``until`` text and the moment the acceptance expires."""
    try:
        return _read_until(where, value)
    # 9999-12-31's next midnight, or a zone that moves past year 1.
    except (OverflowError, OutOfRange):
        raise AcceptanceProblem(
            f"{where}.until {str(value)!r} is past the dates there are (years 1 to 9999)"
        ) from None


def _read_until(where: str, value: Any) -> tuple[str, datetime]:
    if value is None:
        raise AcceptanceProblem(f"{where}.until is required: {_FORMS}")
    # YAML's timestamp type already turns an unquoted 2026-12-15 into a date and an unquoted
    # time into a datetime; a quoted one stays a string. datetime is a subclass of date.
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return to_iso(moment), moment.astimezone(UTC)
    if isinstance(value, date):
        return value.isoformat(), _end_of_day(value)
    if not isinstance(value, str):
        raise AcceptanceProblem(f"{where}.until must be {_FORMS}, got {type(value).__name__}")
    text = value.strip()
    try:
        if _DATE_RE.match(text):
            day = date.fromisoformat(text)
            return day.isoformat(), _end_of_day(day)
        if _TIME_RE.match(text):
            moment = from_iso(text)
            return to_iso(moment), moment.astimezone(UTC)
    except OutOfRange:
        raise
    except ValueError as exc:
        raise AcceptanceProblem(f"{where}.until {value!r} is not a real date: {exc}") from None
    raise AcceptanceProblem(f"{where}.until {value!r} is not {_FORMS}")


def _end_of_day(day: date) -> datetime:
    """A date holds through its whole day in UTC: it expires at the next midnight."""
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(days=1)
