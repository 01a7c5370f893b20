"""The standard lab the tests and the demo share: two SSH hosts with their own engines, a
registry with pushed images, a refused port and a silent listener."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from tests.lab.lab import Lab, LabUnavailable, check_components


@dataclass
class Images:
    """Image references (and their registry digests) built into the standard lab."""

    honcho_306: str
    honcho_303: str
    web_10: str
    web_11: str
    local_dev: str
    digests: dict[str, str]


def standard_lab() -> tuple[Lab, Images]:
    """Start the standard lab; the caller must call ``lab.stop()``."""
    check_components()
    lab = Lab()
    step = "docker-registry"
    try:
        reg = lab.start_registry()
        step = "dockerd alpha"
        alpha = lab.start_engine("alpha")
        step = "dockerd beta"
        beta = lab.start_engine("beta")
        images = Images(
            honcho_306=f"{reg}/plastic-labs/honcho:3.0.6",
            honcho_303=f"{reg}/plastic-labs/honcho:3.0.3",
            web_10=f"{reg}/org/web:1.0",
            web_11=f"{reg}/org/web:1.1",
            local_dev=f"{reg}/org/local:dev",
            digests={},
        )
        step = "the lab images (build, push to the registry, pull)"
        for ref in (images.honcho_306, images.honcho_303, images.web_10, images.web_11):
            images.digests[ref] = lab.build_image(alpha, ref, ref)
            lab.pull(beta, ref)
        lab.build_image(alpha, images.local_dev, "local build", push=False)
        step = "sshd alpha"
        lab.start_sshd("alpha", alpha)
        step = "sshd beta"
        lab.start_sshd("beta", beta)
        step = "the refused and silent ports"
        lab.add_alias("refused", "127.0.0.1", _closed_port())
        lab.add_alias("silent", "127.0.0.1", lab.silent_listener())
    except LabUnavailable:
        lab.stop()
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        # Not our own diagnosis (a key generation, a socket): still say which part failed.
        lab.stop()
        raise LabUnavailable(f"{type(exc).__name__}: {exc}", component=step) from exc
    except BaseException:
        lab.stop()
        raise
    return lab, images


def _closed_port() -> int:
    from tests.lab.lab import free_port

    return free_port()
