"""The constant, read-only remote script and the parser for what it prints.

The script is the same text for every host and every run: nothing from manifests or compose
files is ever put into it. Only the docker invocation (``--docker-command``, the operator's own
configuration) is inserted, each word shell-quoted. It lists every container, inspects them and
then their images with Go templates that emit *only* the whitelisted fields, so environment
variables, commands and other labels (which hold secrets) never leave the host.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from platformctl.collector.model import Container, HostState, Image

PROTOCOL = "@@platformctl 1"
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
MAX_STDERR_BYTES = 1024 * 1024

# Labels are read one key at a time: Config.Labels merges the image's LABELs into the
# container's, and both can hold secrets (docs/design.md, "What is recorded").
_LABEL = '(index .Config.Labels "com.docker.compose.{}")'
CONTAINER_TEMPLATE = (
    '{"id":{{json .Id}},"name":{{json .Name}},"created":{{json .Created}},'
    '"started":{{json .State.StartedAt}},"status":{{json .State.Status}},'
    '"running":{{json .State.Running}},"image":{{json .Config.Image}},'
    '"image_id":{{json .Image}},'
    + ",".join(
        f'"{key}":{{{{json {_LABEL.format(label)}}}}}'
        for key, label in (
            ("project", "project"),
            ("service", "service"),
            ("oneoff", "oneoff"),
            ("number", "container-number"),
        )
    )
    + "}"
)
# RepoDigests is a field of the image, not the container: `docker inspect --format
# '{{index .RepoDigests 0}}' <container>` fails with "map has no entry for key".
IMAGE_TEMPLATE = '{"id":{{json .Id}},"tags":{{json .RepoTags}},"digests":{{json .RepoDigests}}}'
INFO_TEMPLATE = '{"version":{{json .ServerVersion}},"driver":{{json .Driver}}}'


def build_script(docker_command: str = "docker") -> str:
    """The remote script for ``docker_command`` (e.g. ``sudo -n docker``)."""
    words = shlex.split(docker_command)
    if not words:
        raise ValueError("the docker command is empty")
    invocation = " ".join(shlex.quote(w) for w in words)
    # Markers go to both streams, so stdout (JSON only) and stderr (messages) can each be
    # split into the same sections: a warning or a vanished-container error on stderr never
    # lands in the middle of the JSON.
    return f"""\
d() {{ {invocation} "$@"; }}
mark() {{ echo "@@$1"; echo "@@$1" >&2; }}
echo '{PROTOCOL}'
mark info
d info --format '{INFO_TEMPLATE}'
echo "@@rc $?"
mark ls
ids=$(d container ls --all --quiet --no-trunc)
rc=$?
printf '%s\\n' "$ids"
echo "@@rc $rc"
if [ "$rc" -eq 0 ] && [ -n "$ids" ]; then
  mark containers
  d container inspect --format '{CONTAINER_TEMPLATE}' $ids
  echo "@@rc $?"
  imgs=$(d container inspect --format '{{{{.Image}}}}' $ids 2>/dev/null | sort -u)
  if [ -n "$imgs" ]; then
    mark images
    d image inspect --format '{IMAGE_TEMPLATE}' $imgs
    echo "@@rc $?"
  fi
fi
mark end
"""


class DockerOutputError(ValueError):
    """The host's output cannot be read as Docker state; the message is one line."""


@dataclass(frozen=True)
class Parsed:
    """The docker version, storage driver and state read from one host's output."""

    version: str | None
    driver: str | None
    state: HostState


_VANISHED = re.compile(r"no such (container|object|image)", re.I)
_SECTION_RE = re.compile(r"^@@(info|ls|containers|images|end)$")


def one_line(text: str, limit: int = 240) -> str:
    """Squash ``text`` to one printable line of at most ``limit`` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _sections(text: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    sections: dict[str, list[str]] = {}
    codes: dict[str, int] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _SECTION_RE.match(line)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        if line.startswith("@@rc ") and current is not None:
            try:
                codes[current] = int(line[5:])
            except ValueError:
                codes[current] = 1
            continue
        if current is not None:
            sections[current].append(line)
    return sections, codes


def parse_output(stdout: bytes, stderr: bytes = b"") -> Parsed:
    """Parse the script's output; raise :class:`DockerOutputError` with a one-line reason."""
    if len(stdout) > MAX_OUTPUT_BYTES:
        raise DockerOutputError(
            f"docker output exceeds {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB; refusing to parse"
        )
    text = stdout.decode("utf-8", errors="replace")
    errors, _ = _sections(stderr[:MAX_STDERR_BYTES].decode("utf-8", errors="replace"))
    lines = text.splitlines()
    if PROTOCOL not in lines[:50]:
        first = next(
            (
                ln
                for ln in (*lines, *stderr[:4096].decode(errors="replace").splitlines())
                if ln.strip()
            ),
            "no output",
        )
        raise DockerOutputError(f"the remote script did not run: {one_line(first)}")
    sections, codes = _sections("\n".join(lines[lines.index(PROTOCOL) + 1 :]))
    if "end" not in sections:
        raise DockerOutputError("docker output was cut off before the end (truncated)")

    def failure(section: str) -> str:
        return _docker_failure(
            errors.get(section, []) + sections.get(section, []), codes.get(section, 1)
        )

    if codes.get("info", 1) != 0:
        raise DockerOutputError(failure("info"))
    version, driver = _parse_info(sections.get("info", []))
    if codes.get("ls", 1) != 0:
        raise DockerOutputError(failure("ls"))

    containers = [
        _container(obj) for obj in _json_lines(sections.get("containers", []), "container")
    ]
    images = [_image(obj) for obj in _json_lines(sections.get("images", []), "image")]
    state = HostState(containers=tuple(containers), images=tuple(images))
    return Parsed(version, driver, state)


def _parse_info(lines: list[str]) -> tuple[str | None, str | None]:
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            version = obj.get("version")
            driver = obj.get("driver")
            return (
                version if isinstance(version, str) else None,
                driver if isinstance(driver, str) else None,
            )
    first = next((ln for ln in lines if ln.strip()), "nothing")
    raise DockerOutputError(f"docker info printed no JSON: {one_line(first, 120)}")


def _docker_failure(lines: list[str], rc: int) -> str:
    message = next((ln for ln in lines if ln.strip()), "") or f"exit status {rc}"
    message = one_line(message)
    if rc == 127 or "not found" in message.lower() and "docker" in message.lower():
        return f"docker is not installed or not on PATH: {message}"
    if "permission denied" in message.lower():
        return (
            "permission denied on the Docker socket "
            f"(try --docker-command 'sudo -n docker'): {message}"
        )
    if "cannot connect to the docker daemon" in message.lower():
        return f"the Docker daemon is not running: {message}"
    return f"docker failed: {message}"


def _json_lines(lines: list[str], what: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith("{"):
            # The script keeps docker's stderr apart, but a --docker-command wrapper may merge
            # it into stdout: a container removed between listing and inspecting is still
            # not a host error.
            if _VANISHED.search(line):
                continue
            raise DockerOutputError(f"unexpected {what} inspect output: {one_line(line, 120)}")
        try:
            obj = json.loads(line)
        except ValueError:
            raise DockerOutputError(
                f"{what} inspect output is not JSON: {one_line(line, 80)}"
            ) from None
        if not isinstance(obj, dict):
            raise DockerOutputError(f"{what} inspect output is not a JSON object")
        out.append(obj)
    return out


def _str(obj: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise DockerOutputError(f"docker output lacks {key!r}")
        return None
    if not isinstance(value, str):
        raise DockerOutputError(f"docker output has a {type(value).__name__} for {key!r}")
    if len(value) > 4096:
        raise DockerOutputError(f"docker output has an oversized {key!r}")
    return value


def _container(obj: dict[str, Any]) -> Container:
    running = obj.get("running")
    if not isinstance(running, bool):
        raise DockerOutputError("docker output has no boolean 'running'")
    name = _str(obj, "name") or ""
    return Container(
        id=_str(obj, "id") or "",
        name=name[1:] if name.startswith("/") else name,
        created=_str(obj, "created", False),
        started=_str(obj, "started", False),
        status=_str(obj, "status") or "",
        running=running,
        config_image=_str(obj, "image", False) or "",
        image_id=_str(obj, "image_id") or "",
        project=_str(obj, "project", False),
        service=_str(obj, "service", False),
        oneoff=_str(obj, "oneoff", False) == "True",
        number=_str(obj, "number", False),
    )


def _image(obj: dict[str, Any]) -> Image:
    def strings(key: str) -> tuple[str, ...]:
        value = obj.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DockerOutputError(f"docker image output has a malformed {key!r}")
        return tuple(sorted(set(value)))

    return Image(
        id=_str(obj, "id") or "", repo_tags=strings("tags"), repo_digests=strings("digests")
    )
