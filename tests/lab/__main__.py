"""``python -m tests.lab``: start the standard lab and print its ssh config, until Ctrl-C."""

from __future__ import annotations

import signal
import time
from types import FrameType

from tests.lab.topology import standard_lab


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Stop cleanly on SIGTERM too (a background job ignores Ctrl-C's SIGINT).
    signal.signal(signal.SIGTERM, _stop)
    lab, images = standard_lab()
    try:
        print(f"lab running in {lab.root}; ssh config: {lab.ssh_config}")
        print(f"registry: {lab.registry}")
        for ref, digest in images.digests.items():
            print(f"  {ref}@{digest}")
        print("Ctrl-C (or SIGTERM) stops it.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
