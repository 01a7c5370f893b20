"""The test lab: a real registry, Docker engines and sshd instances, all on loopback."""

from tests.lab.lab import Lab, LabHost, LabUnavailable

__all__ = ["Lab", "LabHost", "LabUnavailable"]
