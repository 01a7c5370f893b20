"""The exception root of platformctl and its few subclasses.

One item failing (a host, a manifest) is a value, not an exception; these are for whole-stage
failures that the CLI turns into one line on stderr and exit code 1.
"""

from __future__ import annotations


class PlatformctlError(Exception):
    """Root of every error platformctl reports to the user as one line."""


class UsageError(PlatformctlError):
    """The command line or the configuration cannot be used as given."""


class DeclaredStateError(PlatformctlError):
    """The platform repository as a whole cannot be read (no root, no manifests)."""


class StoreError(PlatformctlError):
    """The snapshot store cannot be opened, read or written."""


class SnapshotNotFound(StoreError):
    """A snapshot ID that the store does not hold."""


class DeliveryError(PlatformctlError):
    """A notification could not be delivered; its changes stay in the outbox."""


def elided(text: str, limit: int = 200) -> str:
    """``text`` for a one-line message: its middle elided past ``limit`` characters (a path's
    start and its file name both tell)."""
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return f"{text[:half]}…{text[len(text) - (limit - 1 - half) :]}"
