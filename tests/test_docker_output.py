"""Parsing what the remote script prints, including hostile and truncated output."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platformctl.collector.interface import Output
from platformctl.collector.local import LocalTransport
from platformctl.collector.script import (
    CONTAINER_TEMPLATE,
    IMAGE_TEMPLATE,
    INFO_TEMPLATE,
    MAX_OUTPUT_LINES,
    PROTOCOL,
    DockerOutputError,
    build_script,
    parse_output,
)

IMAGE_ID = "sha256:" + "aa" * 32


def container(**overrides: Any) -> dict[str, Any]:
    c = {
        "id": "c" * 64,
        "name": "/apps-web-1",
        "created": "2026-11-27T10:00:00Z",
        "started": "2026-11-27T10:00:01Z",
        "status": "running",
        "running": True,
        "image": "nginx:1.25",
        "image_id": IMAGE_ID,
        "project": "apps",
        "service": "web",
        "oneoff": "False",
        "number": "1",
    }
    c.update(overrides)
    return c


def as_docker_prints(obj: dict[str, Any]) -> str:
    """``obj`` as one line of CONTAINER_TEMPLATE's output: its image ID first, no spaces, and
    non-ASCII as is (Go's encoding/json)."""
    ordered = {"image_id": obj.get("image_id"), **obj}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


def output(
    containers: list[Any] | None = None,
    images: list[Any] | None = None,
    info: str = '{"version":"24.0.7","driver":"overlay2"}',
    info_rc: int = 0,
    extra_container_lines: tuple[str, ...] = (),
    end: bool = True,
) -> bytes:
    """stdout as the remote script prints it for these containers and images."""
    return streams(containers, images, info, info_rc, extra_container_lines, end)[0]


def streams(
    containers: list[Any] | None = None,
    images: list[Any] | None = None,
    info: str = '{"version":"24.0.7","driver":"overlay2"}',
    info_rc: int = 0,
    extra_container_lines: tuple[str, ...] = (),
    end: bool = True,
    rc: dict[str, int] | None = None,
    errors: dict[str, list[str]] | None = None,
    silent: set[str] | frozenset[str] = frozenset(),
) -> tuple[bytes, bytes]:
    """(stdout, stderr) as the remote script prints them: every step marked on stdout, its
    exit status after its section; docker's messages (``errors``) on stderr, ``docker
    info``'s after an ``@@info`` marker, the other steps' in turn after an ``@@ls`` marker.
    ``rc`` and ``errors`` override a step's exit status and messages; a ``silent`` step
    prints nothing on stdout (and, as in the script, no image is inspected when the
    containers' inspection printed nothing)."""
    containers = [container()] if containers is None else containers
    images = (
        [{"id": IMAGE_ID, "tags": ["nginx:1.25"], "digests": ["nginx@sha256:" + "bb" * 32]}]
        if images is None
        else images
    )
    rc = {"info": info_rc, **(rc or {})}
    errors = errors or {}
    ids = [_listed_id(c) for c in containers]
    steps: list[tuple[str, list[str]]] = [("info", [info]), ("ls", ids)]
    if containers:
        steps += [
            ("containers", [*[json.dumps(c) for c in containers], *extra_container_lines]),
            ("images", [json.dumps(i) for i in images]),
        ]
    if "containers" in silent:
        steps.pop()
    out, err = [PROTOCOL], ["@@info", *errors.get("info", []), "@@ls"]
    for name, lines in steps:
        out += [f"@@{name}", *([] if name in silent else lines), f"@@rc {rc.get(name, 0)}"]
        if name != "info":
            err += errors.get(name, [])
    if end:
        out.append("@@end")
    return ("\n".join(out) + "\n").encode(), ("\n".join(err) + "\n").encode()


def _listed_id(c: Any) -> str:
    """The line ``docker container ls --quiet --no-trunc`` prints for ``c``: its ID, or one
    when the inspection's fields are under test (the listing always prints IDs)."""
    listed = c.get("id") if isinstance(c, dict) else None
    return listed if isinstance(listed, str) and re.fullmatch("[0-9a-f]{64}", listed) else "0" * 64


def test_a_normal_host_parses_to_whitelisted_fields() -> None:
    parsed = parse_output(output())
    assert parsed.version == "24.0.7" and parsed.driver == "overlay2"
    (c,) = parsed.state.containers
    assert c.name == "apps-web-1" and c.project == "apps" and not c.oneoff and c.is_running
    img = parsed.state.image(IMAGE_ID)
    assert img is not None and img.repo_digests == ("nginx@sha256:" + "bb" * 32,)


def test_paused_is_not_running_even_though_state_running_is_true() -> None:
    (c,) = parse_output(output([container(status="paused", running=True)])).state.containers
    assert c.running and not c.is_running


def test_a_vanished_object_excuses_only_the_step_that_asked_for_it() -> None:
    # The inspections' messages share the listing's section: a vanished object that the
    # failing step did not ask about excuses nothing.
    stdout, stderr = streams(rc={"containers": 1}, errors={"ls": ["Error: No such object: zzz"]})
    with pytest.raises(DockerOutputError, match="container inspect failed: exit status 1"):
        parse_output(stdout, stderr)
    other = "sha256:" + "e" * 64  # an image no container runs
    stdout, stderr = streams(rc={"images": 1}, errors={"images": [f"No such image: {other}"]})
    with pytest.raises(DockerOutputError, match="image inspect failed: exit status 1"):
        parse_output(stdout, stderr)
    needed = IMAGE_ID  # the image the container runs: excused, and the host reads empty of it
    stdout, stderr = streams(
        images=[], rc={"images": 1}, errors={"images": [f"No such image: {needed}"]}
    )
    assert parse_output(stdout, stderr).state.images == ()


@pytest.mark.parametrize(
    "warning",
    [
        "WARNING: Error loading config file: /root/.docker/config.json: permission denied",
        "WARN[0000] Error loading config file: permission denied",
        'time="2026-12-07T10:00:00Z" level=warning msg="permission denied"',
    ],
)
def test_a_failure_is_named_by_its_error_not_the_warning_before_it(warning: str) -> None:
    stdout, stderr = streams(
        rc={"images": 1},
        errors={
            "ls": [warning],
            "containers": [warning],
            "images": [warning, "Cannot connect to the Docker daemon at unix:///x."],
        },
    )
    with pytest.raises(DockerOutputError, match="the Docker daemon is not running: Cannot"):
        parse_output(stdout, stderr)


STEPS = ["info", "ls", "containers", "images"]
STEP_NAMES = {
    "info": "docker info",
    "ls": "docker container ls",
    "containers": "docker container inspect",
    "images": "docker image inspect",
}


@pytest.mark.parametrize("step", STEPS)
def test_a_failing_step_makes_the_host_unreadable_never_empty(step: str) -> None:
    """A step that exits non-zero for any reason but a vanished object is a host error: its
    silence must never read as "no containers" (every module would become a false missing)."""
    stdout, stderr = streams(
        rc={step: 1},
        errors={step: ["Error response from daemon: i/o timeout talking to containerd"]},
    )
    with pytest.raises(DockerOutputError, match=f"{STEP_NAMES[step]} failed: .*i/o timeout"):
        parse_output(stdout, stderr)


@pytest.mark.parametrize("step", STEPS)
def test_a_step_failing_without_a_word_is_still_an_error(step: str) -> None:
    stdout, stderr = streams(rc={step: 2})
    with pytest.raises(DockerOutputError, match=f"{STEP_NAMES[step]} failed: exit status 2"):
        parse_output(stdout, stderr)


@pytest.mark.parametrize("step", ["containers", "images"])
def test_an_inspect_that_prints_nothing_is_an_error(step: str) -> None:
    """Exit status 0 but no answer for what was listed (a wrapper that swallows output)."""
    with pytest.raises(DockerOutputError, match="gave no answer"):
        parse_output(*streams(silent={step}))


def test_a_step_failing_only_because_objects_vanished_is_not_an_error() -> None:
    gone = "d" * 64
    listed = [container(), container(id=gone, name="/gone")]
    stdout, stderr = streams(
        listed,
        rc={"containers": 1},
        errors={"containers": [f"Error: No such container: {gone}"]},
    )
    # The vanished container printed nothing: drop its lines as docker would.
    stdout = b"\n".join(ln for ln in stdout.split(b"\n") if b"/gone" not in ln)
    parsed = parse_output(stdout, stderr)
    assert [c.name for c in parsed.state.containers] == ["apps-web-1"]


@pytest.mark.parametrize(
    "warning",
    [
        "WARNING: Error loading config file: /root/.docker/config.json: permission denied",
        "WARN[0000] Error parsing config file (/root/.docker/config.json): invalid character",
    ],
)
def test_a_container_gone_since_the_listing_is_no_error_beside_docker_warnings(
    warning: str,
) -> None:
    """docker's CLI warns on every call about a config file it cannot read; a container
    that ended between the listing and its inspection (a `compose run --rm` job) is still
    dropped, not the whole host's state lost."""
    gone = "d" * 64
    listed = [container(), container(id=gone, name="/gone")]
    stdout, stderr = streams(
        listed,
        rc={"containers": 1},
        errors={
            "ls": [warning],
            "containers": [warning, f"Error: No such container: {gone}"],
            "images": [warning],
        },
    )
    stdout = b"\n".join(ln for ln in stdout.split(b"\n") if b"/gone" not in ln)
    parsed = parse_output(stdout, stderr)
    assert [c.name for c in parsed.state.containers] == ["apps-web-1"]


def test_a_failure_that_printed_only_warnings_is_not_diagnosed_from_them() -> None:
    """A warning's words ("permission denied" on a config file) are not why the call failed:
    the reason says the step and its exit status, and quotes the warning as such."""
    warning = "WARNING: Error loading config file: /root/.docker/config.json: permission denied"
    stdout, stderr = streams(rc={"containers": 1}, errors={"containers": [warning]})
    with pytest.raises(DockerOutputError) as caught:
        parse_output(stdout, stderr)
    reason = str(caught.value)
    assert reason.startswith("docker container inspect failed: exit status 1 (docker printed")
    assert "sudo" not in reason and "config.json: permission denied" in reason


def test_a_vanished_object_beside_a_real_error_is_still_an_error() -> None:
    stdout, stderr = streams(
        rc={"containers": 1},
        errors={"containers": ["Error: No such container: x", "Error: context deadline exceeded"]},
    )
    with pytest.raises(DockerOutputError, match="context deadline exceeded"):
        parse_output(stdout, stderr)


FAKE_DOCKER = """#!/bin/sh
# Answers the remote script's four docker calls with canned, real-shaped output; the step
# named in $FAKE_DOCKER_FAIL fails instead, as a broken daemon would.
case "$1 $2" in
  "info --format") step=info ;;
  "container ls") step=ls ;;
  "container inspect") step=containers ;;
  "image inspect") step=images ;;
  *) echo "fake docker: unexpected $*" >&2; exit 64 ;;
esac
if [ -n "$FAKE_DOCKER_LOG" ]; then echo "$step" >> "$FAKE_DOCKER_LOG"; fi
if [ "$step" = "$FAKE_DOCKER_FAIL" ]; then
  echo "Error response from daemon: $step broke" >&2
  exit 1
fi
case $step in
  info) echo '%(info)s' ;;
  ls) echo '%(id)s' ;;
  containers) echo '%(container)s' ;;
  images) echo '%(image)s' ;;
esac
"""


@pytest.fixture
def fake_docker(tmp_path: Path) -> str:
    path = tmp_path / "docker"
    path.write_text(
        FAKE_DOCKER
        % {
            "info": '{"version":"24.0.7","driver":"overlay2"}',
            "id": container()["id"],
            "container": as_docker_prints(container()),
            "image": json.dumps({"id": IMAGE_ID, "tags": ["nginx:1.25"], "digests": []}),
        }
    )
    path.chmod(0o755)
    return str(path)


def run_script(docker: str) -> Output:
    return LocalTransport(command_timeout=30).run(build_script(docker))


def test_the_real_script_reads_a_host_through_the_fake_docker(
    fake_docker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "calls"))
    parsed = parse_output(*run_script(fake_docker))
    assert [c.name for c in parsed.state.containers] == ["apps-web-1"]
    assert [i.id for i in parsed.state.images] == [IMAGE_ID]
    # Each docker call once: every call is a process on the host, every run, every host.
    assert (tmp_path / "calls").read_text().split() == ["info", "ls", "containers", "images"]


@pytest.mark.parametrize("step", STEPS)
def test_the_real_script_reports_each_failing_step(
    fake_docker: str, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_FAIL", step)
    with pytest.raises(DockerOutputError, match=f"{STEP_NAMES[step]} failed: .*{step} broke"):
        parse_output(*run_script(fake_docker))


def test_warnings_and_floods_on_stderr_do_not_disturb_the_json() -> None:
    flood = b"@@info\n" + b"WARNING: Error loading config file\n" * 200_000 + b"@@end\n"
    parsed = parse_output(output(), flood)
    assert parsed.version == "24.0.7" and len(parsed.state.containers) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "did not run"),
        (b"sh: 1: docker: not found\n", "did not run"),
        (
            (
                PROTOCOL.encode() + b"\n@@info\n@@rc 127\n@@end\n",
                b"@@info\nsh: 3: docker: not found\n@@end\n",
            ),
            "docker is not installed",
        ),
        (
            (
                PROTOCOL.encode() + b"\n@@info\n@@rc 1\n@@end\n",
                b"@@info\nGot permission denied while trying to connect to the Docker daemon "
                b"socket at unix:///var/run/docker.sock\n@@end\n",
            ),
            "permission denied",
        ),
        (
            (
                PROTOCOL.encode() + b"\n@@info\n@@rc 1\n@@end\n",
                b"@@info\nCannot connect to the Docker daemon at unix:///x. Is the docker daemon "
                b"running?\n",
            ),
            "not running",
        ),
        ((b"", b"sh: 1: sh: not allowed\n"), "not allowed"),
        (output(end=False), "truncated"),
        (output(extra_container_lines=("{not json",)), "not JSON"),
        (output([container(running="yes")]), "boolean"),
        (output([container(name=["x"])]), "list"),
        (output([container(id=None)]), "lacks 'id'"),
        (output(images=[{"id": IMAGE_ID, "tags": "nginx", "digests": []}]), "malformed"),
        (output(info="not json"), "no JSON"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_hostile_output_is_a_one_line_error(raw: bytes | tuple[bytes, bytes], reason: str) -> None:
    stdout, stderr = raw if isinstance(raw, tuple) else (raw, b"")
    with pytest.raises(DockerOutputError, match=reason) as err:
        parse_output(stdout, stderr)
    assert "\n" not in str(err.value)


def test_oversized_output_is_refused_without_parsing() -> None:
    with pytest.raises(DockerOutputError, match="exceeds"):
        parse_output(b"x" * (64 * 1024 * 1024 + 1))


def test_errors_never_echo_more_than_a_short_line() -> None:
    secret_line = "Error: " + "S" * 5000
    with pytest.raises(DockerOutputError) as err:
        parse_output(*streams(rc={"containers": 1}, errors={"containers": [secret_line]}))
    assert "SSSS" in str(err.value) and len(str(err.value)) < 300  # of 5,000


def test_script_is_constant_and_quotes_the_docker_command() -> None:
    assert build_script() == build_script("docker")
    script = build_script("sudo -n docker")
    assert 'd() { sudo -n docker "$@"; }' in script
    hostile = build_script("docker; touch /tmp/pwned")
    assert "'docker;' touch /tmp/pwned" in hostile


# Every Go template action the remote script may run, and so every field of docker's inspect
# output that can leave a host (README: "The store holds ..."). Env, Cmd, Entrypoint, Mounts
# and the labels map hold operators' secrets and must never appear here.
WHITELIST_CONTAINER = {
    "id": "json .Id",
    "name": "json .Name",
    "created": "json .Created",
    "started": "json .State.StartedAt",
    "status": "json .State.Status",
    "running": "json .State.Running",
    "image": "json .Config.Image",
    "image_id": "json .Image",
    "project": 'json (index .Config.Labels "com.docker.compose.project")',
    "service": 'json (index .Config.Labels "com.docker.compose.service")',
    "oneoff": 'json (index .Config.Labels "com.docker.compose.oneoff")',
    "number": 'json (index .Config.Labels "com.docker.compose.container-number")',
}
WHITELIST_IMAGE = {"id": "json .Id", "tags": "json .RepoTags", "digests": "json .RepoDigests"}
WHITELIST_INFO = {"version": "json .ServerVersion", "driver": "json .Driver"}
ACTION = re.compile(r"\{\{(.*?)\}\}")


def template_fields(template: str) -> dict[str, str]:
    """The template's JSON keys, each with the one Go action that fills it."""
    actions = ACTION.findall(template)
    skeleton = json.loads(
        ACTION.sub(lambda m: json.dumps(str(actions.index(m.group(1)))), template)
    )
    assert isinstance(skeleton, dict)
    return {key: actions[int(index)] for key, index in skeleton.items()}


@pytest.mark.parametrize(
    ("template", "whitelist"),
    [
        (CONTAINER_TEMPLATE, WHITELIST_CONTAINER),
        (IMAGE_TEMPLATE, WHITELIST_IMAGE),
        (INFO_TEMPLATE, WHITELIST_INFO),
    ],
    ids=["container", "image", "info"],
)
def test_each_template_emits_exactly_the_whitelisted_fields(
    template: str, whitelist: dict[str, str]
) -> None:
    assert template_fields(template) == whitelist
    # Every action is one of the pairs above: none hides outside a JSON value.
    assert sorted(ACTION.findall(template)) == sorted(whitelist.values())


def test_the_script_runs_no_other_template_action() -> None:
    allowed = {
        *WHITELIST_CONTAINER.values(),
        *WHITELIST_IMAGE.values(),
        *WHITELIST_INFO.values(),
    }
    for docker in ("docker", "sudo -n docker"):
        assert set(ACTION.findall(build_script(docker))) == allowed


@given(st.binary(max_size=2000))
def test_parser_never_raises_past_its_boundary_on_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(DockerOutputError):
        parse_output(raw)
    with contextlib.suppress(DockerOutputError):
        parse_output(output(), raw)
    with contextlib.suppress(DockerOutputError):
        parse_output(output(), raw)


TWO = [container(), container(id="e" * 64, name="/x", oneoff="True")]


def test_every_truncation_of_the_output_is_rejected() -> None:
    """Output cut anywhere (a dropped connection, a killed docker) is never read as a host
    with fewer containers."""
    stdout, stderr = streams(TWO)
    assert len(parse_output(stdout, stderr).state.containers) == 2
    assert stdout.endswith(b"\n@@end\n")
    for cut in range(len(stdout) - 1):  # the last cut only drops the final newline
        with pytest.raises(DockerOutputError):
            parse_output(stdout[:cut], stderr)


@given(st.integers(min_value=0, max_value=2000), st.binary(max_size=50))
def test_truncation_with_any_tail_is_rejected_or_reads_the_whole_state(
    cut: int, tail: bytes
) -> None:
    stdout, stderr = streams(TWO)
    full = parse_output(stdout, stderr)
    try:
        parsed = parse_output(stdout[:cut] + tail, stderr)
    except DockerOutputError:
        return
    # Accepted only when the tail happens to restore what was cut.
    assert parsed == full


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(list(container())), _json))
def test_parser_handles_unexpected_types(fields: dict[str, Any]) -> None:
    with contextlib.suppress(DockerOutputError):
        parse_output(output([container(**fields)]))


def test_fifty_megabytes_of_valid_output_parse_completely() -> None:
    many = [container(id=f"{i:064x}", name=f"/c{i}") for i in range(120_000)]
    raw = output(many)
    assert len(raw) > 50 * 1024 * 1024
    parsed = parse_output(raw)
    assert len(parsed.state.containers) == 120_000


@pytest.mark.parametrize(
    ("step", "rc", "lines", "reason"),
    [
        (
            "info",
            127,
            ["sh: 1: docker: not found"],
            "docker is not installed or not on PATH: sh: 1: docker: not found",
        ),
        ("info", 127, [], "docker is not installed or not on PATH: exit status 127"),
        (
            "info",
            1,
            ["/usr/bin/Docker: NOT FOUND"],
            "docker is not installed or not on PATH: /usr/bin/Docker: NOT FOUND",
        ),
        ("info", 1, ["image not found"], "docker info failed: image not found"),
        (
            "ls",
            1,
            ["Got Permission Denied while trying to connect"],
            "permission denied on the Docker socket (try --docker-command 'sudo -n docker'): "
            "Got Permission Denied while trying to connect",
        ),
        (
            "info",
            1,
            ["", "Cannot connect to the Docker daemon at unix:///x.sock"],
            "the Docker daemon is not running: Cannot connect to the Docker daemon at unix:///x.sock",
        ),
        ("images", 3, [], "docker image inspect failed: exit status 3"),
    ],
)
def test_each_failure_is_named_for_what_to_do(
    step: str, rc: int, lines: list[str], reason: str
) -> None:
    stdout, stderr = streams(rc={step: rc}, errors={step: lines})
    with pytest.raises(DockerOutputError) as err:
        parse_output(stdout, stderr)
    assert str(err.value) == reason


def test_a_step_without_its_exit_status_is_a_failure() -> None:
    stdout, stderr = streams()
    cut = stdout.replace(
        b"@@ls\n" + container()["id"].encode() + b"\n@@rc 0\n",
        b"@@ls\n" + container()["id"].encode() + b"\n",
    )
    assert cut != stdout
    with pytest.raises(DockerOutputError, match="docker container ls failed: no exit status"):
        parse_output(cut, stderr)


def test_an_empty_docker_command_is_refused() -> None:
    with pytest.raises(ValueError, match="^the docker command is empty$"):
        build_script("  ")


def test_every_field_is_read_from_its_own_key() -> None:
    from platformctl.collector.model import Container, Image

    parsed = parse_output(*streams())
    assert parsed.state.containers == (
        Container(
            id="c" * 64,
            name="apps-web-1",
            created="2026-11-27T10:00:00Z",
            started="2026-11-27T10:00:01Z",
            status="running",
            running=True,
            config_image="nginx:1.25",
            image_id=IMAGE_ID,
            project="apps",
            service="web",
            oneoff=False,
            number="1",
        ),
    )
    assert parsed.state.images == (
        Image(IMAGE_ID, ("nginx:1.25",), ("nginx@sha256:" + "bb" * 32,)),
    )


def test_a_container_without_compose_labels_is_a_plain_container() -> None:
    from platformctl.collector.model import Container

    bare = container(project=None, service=None, oneoff=None, number=None, started="")
    (c,) = parse_output(*streams([bare])).state.containers
    assert (c.project, c.service, c.oneoff, c.number, c.started) == (None, None, False, None, None)
    assert isinstance(c, Container) and c.name == "apps-web-1"


def test_a_host_without_containers_still_reports_its_docker() -> None:
    parsed = parse_output(*streams([]))
    assert (parsed.version, parsed.driver, parsed.state.containers) == ("24.0.7", "overlay2", ())
    odd = parse_output(*streams([], info='{"version":24,"driver":null}'))
    assert (odd.version, odd.driver) == (None, None)


def test_a_listing_that_fails_over_a_vanished_object_is_still_a_failure() -> None:
    stdout, stderr = streams(rc={"ls": 1}, errors={"ls": ["Error: No such object: x"]})
    with pytest.raises(DockerOutputError, match="^docker container ls failed: exit status 1$"):
        parse_output(stdout, stderr)


def test_nothing_at_all_says_so() -> None:
    with pytest.raises(DockerOutputError, match="^the remote script did not run: no output$"):
        parse_output(b"", b"")
    with pytest.raises(DockerOutputError, match="^docker output was cut off before the end"):
        parse_output(PROTOCOL.encode() + b"\n", b"")


def test_one_line_squashes_and_caps() -> None:
    from platformctl.collector.script import one_line

    assert one_line("a\x1b[2Jb\n  c\td") == "a [2Jb c d"
    assert one_line("x" * 240) == "x" * 240
    assert one_line("x" * 241) == "x" * 239 + "…"
    assert one_line("y" * 50, 10) == "y" * 9 + "…"


def test_field_values_up_to_4096_characters_are_read() -> None:
    (c,) = parse_output(*streams([container(image="n" * 4096)])).state.containers
    assert len(c.config_image) == 4096
    with pytest.raises(DockerOutputError, match="^docker output has an oversized 'image'$"):
        parse_output(*streams([container(image="n" * 4097)]))


def test_one_off_containers_names_without_a_slash_and_an_empty_image_are_read() -> None:
    run = container(name="apps-web-run-1", oneoff="True", number=None, image="")
    (c,) = parse_output(*streams([run])).state.containers
    assert (c.name, c.oneoff, c.number, c.config_image) == ("apps-web-run-1", True, None, "")


def test_an_exit_status_that_is_not_a_number_is_a_failure() -> None:
    stdout, stderr = streams()
    stdout = stdout.replace(b"@@rc 0\n", b"@@rc ?\n", 1)  # the first step's: docker info
    with pytest.raises(DockerOutputError) as caught:
        parse_output(stdout, stderr)
    assert str(caught.value) == "docker info failed: exit status 1"


def test_output_up_to_the_cap_is_parsed_and_beyond_it_refused_unread() -> None:
    at_cap = output() + b"x" * (64 * 1024 * 1024 - len(output()))  # after @@end: ignored
    assert parse_output(at_cap).state.containers
    with pytest.raises(DockerOutputError) as caught:
        parse_output(at_cap + b"x")
    assert str(caught.value) == "docker output exceeds 64 MiB; refusing to parse"


def test_a_login_banner_of_up_to_49_lines_is_passed_over() -> None:
    banner = b"".join(b"Welcome to host line %d\n" % i for i in range(1, 50))
    assert parse_output(banner + output()).state.containers
    with pytest.raises(DockerOutputError) as caught:
        parse_output(banner + b"one line too many\n" + output())
    assert str(caught.value) == "the remote script did not run: Welcome to host line 1"


def test_what_a_script_that_did_not_run_said_is_shown_even_in_bad_bytes() -> None:
    with pytest.raises(DockerOutputError) as caught:
        parse_output(b"", b"\n  \nbash: caf\xe9: command not found\n")
    assert str(caught.value) == "the remote script did not run: bash: caf\ufffd: command not found"


def test_a_missing_step_is_a_failure_without_an_exit_status() -> None:
    stdout, stderr = streams()
    stdout = stdout.replace(b"@@info\n", b"@@nfo\n", 1)
    with pytest.raises(DockerOutputError) as caught:
        parse_output(stdout, stderr)
    assert str(caught.value) == "docker info failed: no exit status"


def test_a_vanished_message_inside_a_json_value_is_data_not_a_vanished_container() -> None:
    hostile = container(project="Error: No such container: " + "c" * 64)
    (c,) = parse_output(*streams([hostile])).state.containers
    assert c.project == "Error: No such container: " + "c" * 64


@pytest.mark.parametrize("rc", [0, 1])  # docker exits 1 when an inspected one vanished
def test_a_listed_container_that_vanished_on_merged_output_is_dropped(rc: int) -> None:
    gone = "d" * 64
    stdout, stderr = streams([container(), container(id=gone, name="/gone")], rc={"containers": rc})
    stdout = stdout.replace(
        json.dumps(container(id=gone, name="/gone")).encode(),
        f"Error: No such container: {gone}".encode(),
    )
    assert [c.name for c in parse_output(stdout, stderr).state.containers] == ["apps-web-1"]


def test_docker_info_is_found_among_warnings_and_odd_fields_are_dropped() -> None:
    info = 'WARNING: bridge-nf-call-iptables is disabled\n{"version":"24.0.7","driver":5}'
    parsed = parse_output(*streams(info=info))
    assert (parsed.version, parsed.driver) == ("24.0.7", None)
    with pytest.raises(DockerOutputError) as caught:
        parse_output(*streams(info=""))
    assert str(caught.value) == "docker info printed no JSON: nothing"


def test_blank_lines_between_inspect_objects_are_skipped() -> None:
    stdout, stderr = streams()
    stdout = stdout.replace(b"@@containers\n", b"@@containers\n\n  \n", 1)
    (c,) = parse_output(stdout, stderr).state.containers
    assert c.name == "apps-web-1"
    with pytest.raises(DockerOutputError) as caught:
        parse_output(*streams([container(running="yes")]))
    assert str(caught.value) == "docker output has no boolean 'running'"


# The script takes each container's image ID off the start of its inspect line (JSON-escaped,
# as docker prints it) and passes on those of this form, the form `grep -E` once took. It must
# pass the same ones, each once, and nothing else, in whatever shell the host has and whatever
# its locale.
ID_FORM = re.compile(r"[a-z0-9]+:[0-9a-f]+")
RECORDING_DOCKER = """#!/bin/sh
case "$1 $2" in
  "info --format") echo '{"version":"24.0.7","driver":"overlay2"}' ;;
  "container ls") echo cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc ;;
  "container inspect") cat "$INSPECT_FILE" ;;
  "image inspect") shift 4; printf '%s\\n' "$@" > "$ARGS_FILE" ;;
esac
"""
SHELLS = [["sh"], ["bash", "--posix"], ["busybox", "sh"]]


def run_in_shell(
    shell: list[str], here: Path, docker: str, env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    """The script run by ``shell`` in the folder ``here``, with the stand-in ``docker`` (its
    text) answering and ``env`` beside PATH."""
    path = here / "docker"
    path.write_text(docker)
    path.chmod(0o755)
    return subprocess.run(
        [*shell, "-s"],
        input=build_script(str(path)).encode(),
        cwd=here,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        timeout=30,
        check=True,
    )


id_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "sha256:" + "ab" * 32,
                "sha256:00ff",
                "md5:0a",
                "sha256:" + "ab" * 32 + " x",
                "sha256:0?",  # would match the file sha256:0f, were IDs globbed
                "s*",
                "sha256:ab\r",
                "\u212a:0",  # the Kelvin sign, which some locales fold into a-z
                "sha256:\uff21",
                'sha256:ab"',  # a quote: JSON-escaped, it leaves a backslash behind
                "sha256:ab\\",
                '{"image_id":"sha256:ab',  # the prefix inside the value
            ]
        ),
        # Quotes and backslashes come back JSON-escaped; braces, quotes and colons spell out
        # pieces of the prefix the shell strips.
        st.text(alphabet='sha256:0fgAF*?[]!-. \t\r/"\\{}\u00e9\u212a', max_size=12),
    ),
    max_size=8,
)


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@given(lines=id_lines)
def test_the_script_inspects_each_well_formed_image_id_once(
    shell: list[str], lines: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        inspected = [as_docker_prints(container(image_id=line)) for line in lines]
        (here / "inspect").write_text("".join(f"{x}\n" for x in inspected), encoding="utf-8")
        # Named like a glob pattern's match: an unquoted ID must never expand to it.
        (here / "sha256:0f").write_text("")
        env = {"INSPECT_FILE": "inspect", "ARGS_FILE": "args", "LC_ALL": "C.UTF-8"}
        run_in_shell(shell, here, RECORDING_DOCKER, env)
        args = (here / "args").read_text().split() if (here / "args").exists() else []
    wanted = {line for line in lines if ID_FORM.fullmatch(line)}
    assert sorted(args) == sorted(wanted)  # each once: no duplicates among the arguments


# The listing is captured with docker's messages: the script inspects its lines that are
# container IDs (64 hex digits, as docker prints them) and no others, and the parser lists
# exactly those (a line it listed that the script did not inspect would read as a container
# docker gave no answer for).
LISTING_DOCKER = """#!/bin/sh
case "$1 $2" in
  "info --format") echo '{"version":"24.0.7","driver":"overlay2"}' ;;
  "container ls") cat "$LS_FILE"; echo 'WARNING: config file unreadable' >&2 ;;
  "container inspect")
    shift 4
    printf '%%s\\n' "$@" > "$ARGS_FILE"
    for i; do printf '%%s\\n' '%(container)s' | sed "s/@ID@/$i/"; done ;;
  "image inspect") echo '%(image)s' ;;
esac
"""
listing_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "c" * 64,
                "0123456789abcdef" * 4,
                "C" * 64,  # upper case: not what docker prints
                "c" * 63,
                "c" * 65,
                "c" * 64 + " ",
                " " + "c" * 64,
                "c" * 64 + "\r",
                "sha256:" + "c" * 64,
                "\x1b[32m" + "c" * 64 + "\x1b[0m",  # a wrapper's colours
                "c" * 64 + " x",
                "WARNING: a warning without its line end" + "c" * 64,
                "c" * 12,  # the short form
                "1733580000000",  # a number a wrapper printed: a message
                "WARNING: Error loading config file: open /root/.docker/config.json",
                "*",  # a glob: never expanded
            ]
        ),
        st.text(alphabet="0123456789abcdefg *\t", max_size=70),
    ),
    max_size=6,
)


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@given(lines=listing_lines)
def test_the_script_inspects_exactly_the_containers_the_parser_lists(
    shell: list[str], lines: list[str]
) -> None:
    docker = LISTING_DOCKER % {
        "container": as_docker_prints(container(id="@ID@")),
        "image": json.dumps({"id": IMAGE_ID, "tags": [], "digests": []}),
    }
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        (here / "ls").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
        (here / ("c" * 8)).write_text("")  # a file a glob of the listing could expand to
        done = run_in_shell(shell, here, docker, {"LS_FILE": "ls", "ARGS_FILE": "args"})
        args = (here / "args").read_text().split("\n")[:-1] if (here / "args").exists() else []
    wanted = [line for line in lines if re.fullmatch("[0-9a-f]{64}", line)]
    assert args == wanted
    # An ID in another form is an error, never a container passed over: a line that is not
    # an ID but has a run of exactly 64 hex digits, or is 12 of them.
    runs = [(ln, len(run)) for ln in lines for run in re.findall("[0-9a-fA-F]+", ln)]
    odd = [ln for ln, n in runs if ln not in wanted and (n == 64 or n == len(ln.strip()) == 12)]
    if odd:
        with pytest.raises(DockerOutputError, match="not a container ID"):
            parse_output(done.stdout, done.stderr)
        return
    parsed = parse_output(done.stdout, done.stderr)  # nothing listed went unanswered
    assert sorted(c.id for c in parsed.state.containers) == sorted(wanted)


def test_a_label_holding_a_unicode_line_break_stays_in_its_line() -> None:
    # Go's JSON leaves U+0085 (NEL) unescaped, which str.splitlines ends a line at; the
    # script's shell, and so the parser, end lines at "\n" alone.
    stdout, stderr = streams([container(project="apps\x85x")])
    raw = stdout.replace(b"\\u0085", "\x85".encode())
    assert raw != stdout
    (c,) = parse_output(raw, stderr).state.containers
    assert c.project == "apps\x85x"


def test_an_answer_of_millions_of_short_lines_is_refused_before_it_is_split() -> None:
    """63 MiB of three-byte lines is under the byte cap, and split into a Python string each
    it took 2 GB and half a minute of one host's parse, after its timeout had stopped
    counting: the lines are counted first."""
    out, err = streams()
    flood = out.replace(b"@@ls\n", b"@@ls\n" + b"ab\n" * (MAX_OUTPUT_LINES + 1), 1)
    with pytest.raises(DockerOutputError, match="more than 500,000 lines"):
        parse_output(flood, err)
    # The most a real host prints is far below: a thousand containers parse as before.
    many = [container(id=f"{i:064x}", name=f"/c{i}") for i in range(1000)]
    assert len(parse_output(*streams(many)).state.containers) == 1000


def test_json_nested_past_the_interpreter_stack_is_not_json_not_a_python_error() -> None:
    deep = '{"image_id":"' + IMAGE_ID + '","a":' + "[" * 100_000
    with pytest.raises(DockerOutputError, match="container inspect output is not JSON"):
        parse_output(*streams(extra_container_lines=(deep,)))
    nested_info = '{"version":' + "[" * 100_000
    with pytest.raises(DockerOutputError, match="docker info printed no JSON"):
        parse_output(*streams(info=nested_info))
