"""``python -m tests.lab``: start the standard lab and print its ssh config, until Ctrl-C."""

from __future__ import annotations

import time

from tests.lab.topology import standard_lab

if __name__ == "__main__":
    lab, images = standard_lab()
    try:
        print(f"lab running in {lab.root}; ssh config: {lab.ssh_config}")
        print(f"registry: {lab.registry}; images: {', '.join(images.digests)}")
        print("Ctrl-C stops it.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
