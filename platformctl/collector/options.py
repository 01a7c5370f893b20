"""How a collection run reaches its hosts: the options every collecting command shares."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CollectOptions:
    """SSH config, docker invocation, parallelism and timeouts of one collection run."""

    ssh_config: str | None = None
    docker_command: str = "docker"
    jobs: int = 16
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
