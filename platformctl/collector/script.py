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
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from platformctl.collector.model import Container, HostState, Image

PROTOCOL = "@@platformctl 1"
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
# A host's answer is a line per container twice, one per image and a few markers: half a
# million lines is some hundred thousand containers. Past it, the lines alone (a Python
# string each, in several lists) would cost gigabytes for 64 MiB of short ones.
MAX_OUTPUT_LINES = 500_000
MAX_STDERR_BYTES = 1024 * 1024

# Labels are read one key at a time: Config.Labels merges the image's LABELs into the
# container's, and both can hold secrets (docs/design.md, "What is recorded").
_LABEL = '(index .Config.Labels "com.docker.compose.{}")'
# The image ID comes first: the script reads it back off the start of each line.
IMAGE_ID_PREFIX = '{"image_id":"'
CONTAINER_TEMPLATE = (
    '{"image_id":{{json .Image}},"id":{{json .Id}},"name":{{json .Name}},'
    '"created":{{json .Created}},"started":{{json .State.StartedAt}},'
    '"status":{{json .State.Status}},"running":{{json .State.Running}},'
    '"image":{{json .Config.Image}},'
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


# Exactly 64 characters, as a shell pattern: a container ID's length without `${#i}`, whose
# "{#" Ansible's argument splitter reads as an unclosed Jinja comment (bench/fleet.py runs
# the script through it).
_SIXTY_FOUR = "?" * 64


def build_script(docker_command: str = "docker") -> str:
    """The remote script for ``docker_command`` (e.g. ``sudo -n docker``)."""
    words = shlex.split(docker_command)
    if not words:
        raise ValueError("the docker command is empty")
    invocation = " ".join(shlex.quote(w) for w in words)
    # Every docker call's exit status is printed after its section: the parser must be able
    # to tell "nothing there" from "could not read it". Every write reaches the client as
    # its own SSH packet, which paramiko decrypts and dispatches in Python (docs/design.md,
    # "The remote script"), so the script writes its protocol line, lets `docker info`
    # print, and writes all the rest at once at the end; the other calls are captured. Their
    # messages stay on stderr, so a warning without a line end never joins the output, and
    # a flood there is read and dropped by the client. Two markers on stderr: one before
    # `docker info` (a login shell's noise before it is told apart) and one before the
    # listing, whose messages and the inspections' follow it in the order of the calls.
    # `docker info` prints directly: a child that a --docker-command wrapper leaves behind
    # holding a capture's pipe would hold up the shell until the timeout.
    # The listing's lines that are container IDs (64 lowercase hex digits, as the parser
    # checks them) are inspected. The containers' inspection puts each line's image ID first
    # (IMAGE_ID_PREFIX), which the shell takes off it and checks (algorithm:hex, with the
    # characters listed: ranges like a-z follow the locale in some shells), each straight
    # into `sort -u` (LC_ALL=C: distinct bytewise). No string is grown a line at a time: the
    # shell copies it whole each time, quadratic in the containers. The IDs are arguments one
    # a line (IFS), and set -f: no ID or container ID is ever globbed.
    return f"""\
set -f
d() {{ {invocation} "$@"; }}
s=''
put() {{ s="$s$1
"; }}
printf '%s\\n' '{PROTOCOL}' '@@info'
echo '@@info' >&2
d info --format '{INFO_TEMPLATE}'
put "@@rc $?"
echo '@@ls' >&2
ls=$(d container ls --all --quiet --no-trunc)
rc=$?
put '@@ls'; put "$ls"; put "@@rc $rc"
IFS='
'
ids=''
if [ "$rc" -eq 0 ]; then
  ids=$(for i in $ls; do
    case $i in
      *[!0123456789abcdef]*) ;;
      {_SIXTY_FOUR}) printf '%s\\n' "$i" ;;
    esac
  done)
fi
if [ -n "$ids" ]; then
  c=$(d container inspect --format '{CONTAINER_TEMPLATE}' $ids)
  rc=$?
  put '@@containers'; put "$c"; put "@@rc $rc"
  imgs=$(for i in $c; do
    i=${{i#'{IMAGE_ID_PREFIX}'}}
    i=${{i%%'"'*}}
    case $i in
      *[!abcdefghijklmnopqrstuvwxyz0123456789:]* | :* | *: | *:*:* | *:*[!0123456789abcdef]*) ;;
      *:*) printf '%s\\n' "$i" ;;
    esac
  done | LC_ALL=C sort -u)
  if [ -n "$imgs" ]; then
    o=$(d image inspect --format '{IMAGE_TEMPLATE}' $imgs)
    rc=$?
    put '@@images'; put "$o"; put "@@rc $rc"
  fi
fi
unset IFS
put '@@end'
printf '%s' "$s"
"""


class DockerOutputError(ValueError):
    """The host's output cannot be read as Docker state; the message is one line."""


@dataclass(frozen=True)
class Parsed:
    """The docker version, storage driver and state read from one host's output."""

    version: str | None
    driver: str | None
    state: HostState


_VANISHED = re.compile(r"no such (container|object|image):\s*(\S*)", re.I)
# A warning as docker's CLI prints one ("WARNING: ..."), or a Go logger ("WARN[0000] ...",
# "time=... level=warning msg=...").
_WARNING = re.compile(r"\s*(?:warning\b|warn\[)|.*\blevel=\"?warn", re.I)
_SECTION_RE = re.compile(r"^@@(info|ls|containers|images|end)$")
# The stderr section that holds a step's messages: the inspections' follow the listing's.
_SAID_AFTER = {"info": "info", "ls": "ls", "containers": "ls", "images": "ls"}
_STEPS = {
    "info": "docker info",
    "ls": "docker container ls",
    "containers": "docker container inspect",
    "images": "docker image inspect",
}


def one_line(text: str, limit: int = 240) -> str:
    """Squash ``text`` to one printable line of at most ``limit`` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _lines(text: str) -> list[str]:
    """``text``'s lines, ended at "\n" alone, as the script's shell splits them
    (str.splitlines also ends them at "\r", "\x85" and more, which a label can hold inside a
    JSON line)."""
    return text.split("\n")


def _sections(lines: Iterable[str]) -> tuple[dict[str, list[str]], dict[str, int]]:
    sections: dict[str, list[str]] = {}
    codes: dict[str, int] = {}
    current: str | None = None
    for line in lines:
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
    """Parse the script's output; raise :class:`DockerOutputError` with a one-line reason.

    Every docker step must have succeeded, or failed only because a container or image went
    away between listing and inspecting it: a step that failed otherwise means the host's
    state is unknown, never that it runs nothing.
    """
    if len(stdout) > MAX_OUTPUT_BYTES:
        raise DockerOutputError(
            f"docker output exceeds {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB; refusing to parse"
        )
    if stdout.count(b"\n") > MAX_OUTPUT_LINES:
        raise DockerOutputError(
            f"docker output has more than {MAX_OUTPUT_LINES:,} lines; refusing to parse"
        )
    err_text = stderr[:MAX_STDERR_BYTES].decode(errors="replace")
    errors, _ = _sections(_lines(err_text))
    lines = _lines(stdout.decode(errors="replace"))
    # A login banner may come first; the script's own output starts within 50 lines.
    if PROTOCOL not in lines[:50]:
        said = (ln for ln in (*lines, *err_text.splitlines()) if ln.strip())
        first = next(said, "no output")
        raise DockerOutputError(f"the remote script did not run: {one_line(first)}")
    sections, codes = _sections(islice(lines, lines.index(PROTOCOL) + 1, None))
    if "end" not in sections:
        raise DockerOutputError("docker output was cut off before the end (truncated)")

    def step(name: str) -> _Step:
        said = errors.get(_SAID_AFTER[name], [])
        return _step(name, sections.get(name, []), said, codes.get(name))

    info = step("info")
    info.require_success()
    version, driver = _parse_info(info)
    listing = step("ls")
    listing.require_success()
    # The shell inspects only the lines in docker's own form; one that holds an ID in another
    # form would otherwise be a container passed over, and the host would read as running
    # less than it does.
    odd = next((ln for ln in sections.get("ls", []) if _other_form_of_id(ln)), None)
    if odd is not None:
        raise DockerOutputError(
            f"docker container ls printed {one_line(odd, 80)!r}, not a container ID "
            "(64 lowercase hex digits, as `docker container ls --quiet --no-trunc` prints)"
        )
    listed = listing.stdout
    if not listed:
        return Parsed(version, driver, HostState())

    inspected = step("containers")
    inspected.require_success(asked=listed)
    gone = inspected.gone
    containers = [
        c for c in (_container(obj) for obj in _objects(inspected, "container")) if c.id not in gone
    ]
    answered = {c.id for c in containers} | gone
    unanswered = [i for i in listed if i not in answered]
    if unanswered:
        raise DockerOutputError(
            f"docker container inspect gave no answer for {len(unanswered)} of {len(listed)} "
            f"listed containers (first: {one_line(unanswered[0], 80)})"
        )

    needed = {c.image_id for c in containers}
    images_step = step("images") if "images" in sections else _Step("images", [], [], 0, set())
    if needed:
        images_step.require_success(asked=needed)
    images = [_image(obj) for obj in _objects(images_step, "image")]
    unread = sorted(needed - {i.id for i in images} - images_step.gone)
    if unread:
        raise DockerOutputError(
            f"docker image inspect gave no answer for {len(unread)} of {len(needed)} images "
            f"(first: {one_line(unread[0], 80)})"
        )
    return Parsed(version, driver, HostState(containers=tuple(containers), images=tuple(images)))


@dataclass(frozen=True)
class _Step:
    """One docker call of the script: what it printed, and what it said had vanished."""

    name: str
    stdout: list[str]
    complaints: list[str]
    rc: int | None
    gone: set[str]

    def require_success(self, asked: Collection[str] = ()) -> None:
        """Raise unless the call exited 0, or failed only over objects it was ``asked`` about
        that vanished (messages of several steps share a section: a vanished object excuses
        only the step that asked about it)."""
        if self.rc == 0:
            return
        # Warnings do not stand in the way: docker's CLI warns on every call about a config
        # file it cannot read, and a container gone since the listing is still no failure.
        errors = [line for line in self.complaints if not _WARNING.match(line)]
        if self.rc is not None and not errors and not self.gone.isdisjoint(asked):
            return
        raise DockerOutputError(_docker_failure(self.complaints, self.rc, _STEPS[self.name]))


def _step(name: str, stdout: list[str], stderr: list[str], rc: int | None) -> _Step:
    """The step ``name``'s section: what docker printed (JSON lines; container IDs for the
    listing), what it said on stderr, or among its output where a --docker-command wrapper
    merged the streams, and which objects it said had vanished."""
    is_output = _CONTAINER_ID.fullmatch if name == "ls" else _is_json_line
    gone: set[str] = set()
    complaints: list[str] = []
    kept: list[str] = []
    for line in stdout:
        # Nearly every line is output, kept without a search.
        if is_output(line):
            kept.append(line)
        elif line.strip():
            _complaint(line, gone, complaints)
    for line in stderr:
        if line.strip():
            _complaint(line, gone, complaints)
    return _Step(name, kept, complaints, rc, gone)


# What `docker container ls --quiet --no-trunc` prints for a container, and all the script
# inspects of its lines. A listing line that is not one but holds 64 hex digits of either
# case (with a prefix, colour codes, a CR or a word around them), or is a short ID (12), is
# an ID in another form: an error, where a message (a warning, a number) is passed over.
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
_ID_INSIDE = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_SHORT_ID = re.compile(r"[0-9a-fA-F]{12}")


def _other_form_of_id(line: str) -> bool:
    """True for a listing line that is not a container ID but holds one in another form."""
    if _CONTAINER_ID.fullmatch(line):
        return False
    return bool(_ID_INSIDE.search(line) or _SHORT_ID.fullmatch(line.strip()))


def _is_json_line(line: str) -> bool:
    return line.startswith("{")


def _complaint(line: str, gone: set[str], complaints: list[str]) -> None:
    """File a message of docker's: an object that vanished between the listing and its
    inspection is not a host error (``gone``); anything else may be (``complaints``)."""
    m = _VANISHED.search(line)
    if m:
        gone.add(m.group(2))
    else:
        complaints.append(line)


def _parse_info(info: _Step) -> tuple[str | None, str | None]:
    for line in info.stdout:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            return _info_field(obj, "version"), _info_field(obj, "driver")
    first = next((ln for ln in (*info.stdout, *info.complaints) if ln.strip()), "nothing")
    raise DockerOutputError(f"docker info printed no JSON: {one_line(first, 120)}")


# A server version or storage driver is a short word ("27.3.1", "overlay2"); both are stored
# with every snapshot's row of the host, not once per content as its containers are.
_MAX_INFO_FIELD = 128


def _info_field(obj: dict[str, Any], key: str) -> str | None:
    """``docker info``'s ``key``: None when absent or not a string; an error when oversized.
    A lone surrogate (JSON's ``\\ud800``, which no UTF-8 store can hold) is kept as its
    escape."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        return None
    if len(value) > _MAX_INFO_FIELD:
        raise DockerOutputError(f"docker info printed an oversized {key!r}")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _docker_failure(lines: list[str], rc: int | None, step: str) -> str:
    status = "no exit status" if rc is None else f"exit status {rc}"
    # The first message that is not a warning: docker may warn on every call (an unreadable
    # config file), and the warning is not why the call failed.
    said = [ln for ln in lines if ln.strip()]
    error = next((ln for ln in said if not _WARNING.match(ln)), None)
    if error is None:
        # Only warnings: what they say (a config file's "permission denied") is not why the
        # call failed, so they are quoted but not read as a diagnosis.
        warned = f" (docker printed only warnings: {one_line(said[0])})" if said else ""
        if rc == 127:
            return f"docker is not installed or not on PATH: {status}{warned}"
        return f"{step} failed: {status}{warned}"
    message = one_line(error)
    if rc == 127 or "not found" in message.lower() and "docker" in message.lower():
        return f"docker is not installed or not on PATH: {message}"
    if "permission denied" in message.lower():
        return (
            "permission denied on the Docker socket "
            f"(try --docker-command 'sudo -n docker'): {message}"
        )
    if "cannot connect to the docker daemon" in message.lower():
        return f"the Docker daemon is not running: {message}"
    return f"{step} failed: {message}"


def _objects(step: _Step, what: str) -> list[dict[str, Any]]:
    """The objects of an inspection's lines (each starts with ``{``, see :func:`_step`)."""
    out: list[dict[str, Any]] = []
    for line in step.stdout:
        try:
            out.append(json.loads(line))  # valid JSON that starts with { is an object
        except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
            raise DockerOutputError(
                f"{what} inspect output is not JSON: {one_line(line, 80)}"
            ) from None
    return out


def _required(obj: dict[str, Any], key: str) -> str:
    value = _optional(obj, key)
    if value is None:
        raise DockerOutputError(f"docker output lacks {key!r}")
    return value


def _optional(obj: dict[str, Any], key: str) -> str | None:
    """The string at ``key``; None when absent or empty (docker prints a missing label so)."""
    value = obj.get(key)
    if value is None or value == "":
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
    name = _required(obj, "name")
    return Container(
        id=_required(obj, "id"),
        name=name.removeprefix("/"),
        created=_optional(obj, "created"),
        started=_optional(obj, "started"),
        status=_required(obj, "status"),
        running=running,
        config_image=_optional(obj, "image") or "",
        image_id=_required(obj, "image_id"),
        project=_optional(obj, "project"),
        service=_optional(obj, "service"),
        oneoff=_optional(obj, "oneoff") == "True",
        number=_optional(obj, "number"),
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
        id=_required(obj, "id"), repo_tags=strings("tags"), repo_digests=strings("digests")
    )
