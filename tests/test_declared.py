"""Reading the platform repository: manifests, compose stacks, bad input as values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platformctl.declared.compose import normalize_project_name
from platformctl.declared.manifests import find_root, load_declared, load_manifest
from platformctl.declared.model import (
    CheckedModule,
    ComposeImage,
    ExternalModule,
    InvalidModule,
    Module,
    Orchestrator,
    hosts_in_scope,
)
from platformctl.declared.reference import parse_reference
from platformctl.errors import DeclaredStateError
from tests.conftest import load_stack, write_compose, write_module

DIGEST = "sha256:" + "12" * 32


def invalid(module: Module) -> bool:
    return isinstance(module, InvalidModule)


def problem(module: Module) -> str | None:
    return module.problem if isinstance(module, InvalidModule) else None


def compose_runtime(**overrides: object) -> dict[str, object]:
    runtime: dict[str, object] = {
        "host": "rs2000",
        "orchestrator": "docker-compose",
        "compose_service": "honcho-api",
        "image_observed": f"ghcr.io/plastic-labs/honcho:3.0.6@{DIGEST}",
    }
    runtime.update(overrides)
    return runtime


def test_string_and_mapping_image_observed_are_the_same(tmp_path: Path) -> None:
    write_module(tmp_path, "a", compose_runtime())
    write_module(
        tmp_path,
        "b",
        compose_runtime(
            image_observed={
                "image": "ghcr.io/plastic-labs/honcho:3.0.6",
                "digest": DIGEST,
                "observed_at": "2026-11-01",
            }
        ),
    )
    state = load_declared(tmp_path)
    a, b = state.modules
    assert a.declared == b.declared
    assert a.declared is not None and a.declared.tag == "3.0.6" and a.declared.digest == DIGEST


def test_metadata_name_wins_over_folder_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "folder",
        compose_runtime(extra={"x": 1}),
        metadata={"name": "honcho-api", "labels": {"team": "a"}},
        status={"x": 2},
    )
    (module,) = load_declared(tmp_path).modules
    assert module.name == "honcho-api" and problem(module) is None


def test_external_modules_need_no_image(tmp_path: Path) -> None:
    write_module(tmp_path, "dns", {"host": "edge", "orchestrator": "external"})
    (module,) = load_declared(tmp_path).modules
    assert isinstance(module, ExternalModule)


R = "spec:\n  runtime:\n"
DOCKER = R + "    host: a\n    orchestrator: docker\n    container: c\n"
Z64, O64 = "sha256:" + "0" * 64, "sha256:" + "1" * 64


@pytest.mark.parametrize(
    ("content", "name", "said"),
    [
        ("spec:\n  runtime: [\n", "bad", ":3: invalid YAML: did not find expected node content"),
        (R + "    host: a\n   bad: indent\n", "bad", ":4: invalid YAML: "),
        ("- just\n- a list\n", "bad", ": a manifest must be a mapping"),
        ("metadata: [x]\nspec: {}\n", "bad", ": metadata must be a mapping"),
        ("metadata: {name: '  '}\n", "bad", ": metadata.name must be a non-empty string"),
        ("metadata: {name: api}\nspec: {}\n", "api", ": spec.runtime is missing or not a mapping"),
        ("spec: []\n", "bad", ": spec.runtime is missing or not a mapping"),
        (
            R + "    host: a\n    orchestrator: nomad\n",
            "bad",
            ": unknown orchestrator 'nomad' (expected one of docker-compose, docker, external)",
        ),
        (R + "    host: a\n", "bad", ": spec.runtime.orchestrator is required"),
        (
            R + "    host: a\n    orchestrator: '  '\n",
            "bad",
            ": spec.runtime.orchestrator is empty",
        ),
        (
            R + "    host: [a]\n    orchestrator: docker\n",
            "bad",
            ": spec.runtime.host must be a string, got list",
        ),
        (
            R + "    host: true\n    orchestrator: docker\n",
            "bad",
            ": spec.runtime.host must be a string, got bool",
        ),
        (R + "    host:\n    orchestrator: docker\n", "bad", ": spec.runtime.host is empty"),
        (R + "    orchestrator: docker\n", "bad", ": spec.runtime.host is required"),
        (
            R + "    host: a\n    orchestrator: docker-compose\n    image_observed: x:1\n",
            "bad",
            ": spec.runtime.compose_service is required",
        ),
        (
            R + "    host: a\n    orchestrator: docker\n    image_observed: x:1\n",
            "bad",
            ": spec.runtime.container is required",
        ),
        (
            R + "    host: 'a;b'\n    orchestrator: docker\n    container: c\n"
            "    image_observed: x:1\n",
            "bad",
            ": spec.runtime.host 'a;b' is not an ssh alias or host name "
            "(letters, digits, '.', '-', '_', ':' only)",
        ),
        (DOCKER, "bad", ": spec.runtime.image_observed is required"),
        (
            DOCKER + "    image_observed: Ghcr.io/X/Y:1\n",
            "bad",
            ": spec.runtime.image_observed: invalid image reference 'Ghcr.io/X/Y:1': "
            "repository name must be lowercase",
        ),
        (
            DOCKER + "    image_observed: {image: 'x:1', digest: 'md5:1'}\n",
            "bad",
            ": spec.runtime.image_observed: invalid digest in image reference 'x:1@md5:1'",
        ),
        (
            DOCKER + "    image_observed: 12\n",
            "bad",
            ": spec.runtime.image_observed must be a string or a mapping, got int",
        ),
        (
            DOCKER + f"    image_observed: {{digest: '{Z64}'}}\n",
            "bad",
            ": spec.runtime.image_observed.image is required and must be a string",
        ),
        (
            DOCKER + "    image_observed: {image: 'x:1', digest: 5}\n",
            "bad",
            ": spec.runtime.image_observed.digest must be a string like sha256:<64 hex>",
        ),
        (
            DOCKER + f"    image_observed: {{image: 'x@{Z64}', digest: '{O64}'}}\n",
            "bad",
            f": spec.runtime.image_observed: image digest {Z64} disagrees with digest {O64}",
        ),
        (
            DOCKER + "    image_observed: x:1\n    drift_accepted: {reason: r}\n",
            "bad",
            ": spec.runtime.drift_accepted.until is required: "
            "a date (2026-12-15) or an ISO time (2026-12-15T12:00:00Z)",
        ),
    ],
)
def test_bad_manifests_become_invalid_modules_naming_file_and_problem(
    tmp_path: Path, content: str, name: str, said: str
) -> None:
    path = tmp_path / "modules" / "bad" / "module.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    module = load_manifest(path)
    assert isinstance(module, InvalidModule)
    assert (module.name, module.path) == (name, path)
    assert module.problem.startswith(f"{path}{said}")
    if "invalid YAML: " not in said:
        assert module.problem == f"{path}{said}"


def test_good_manifests_keep_every_field_as_written(tmp_path: Path) -> None:
    path = tmp_path / "modules" / "web" / "module.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        R + "    host: edge-1\n    orchestrator: docker\n    container: ' web '\n"
        "    compose_project: apps\n    image_observed: nginx\n"
    )
    assert load_manifest(path) == CheckedModule(
        name="web",
        path=path,
        host="edge-1",
        orchestrator=Orchestrator.DOCKER,
        declared_raw="nginx",
        declared=parse_reference("nginx", default_tag=False),
        compose_service=None,
        compose_project="apps",
        container="web",
        accepted=None,
    )
    assert parse_reference("nginx", default_tag=False).tag is None
    external = tmp_path / "modules" / "dns" / "module.yaml"
    external.parent.mkdir()
    external.write_text(R + "    host: dns-1\n    orchestrator: external\n")
    assert load_manifest(external) == ExternalModule(name="dns", path=external, host="dns-1")


def test_non_utf8_manifest_is_invalid_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "modules" / "latin" / "module.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes("spec:\n  runtime:\n    host: caf\xe9\n".encode("latin-1"))
    module = load_manifest(path)
    assert invalid(module) and "not UTF-8" in (problem(module) or "")


def test_one_bad_manifest_does_not_hide_the_others(tmp_path: Path) -> None:
    write_module(tmp_path, "good", compose_runtime())
    bad = tmp_path / "modules" / "bad" / "module.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(": : :\n")
    state = load_declared(tmp_path)
    assert [(m.name, invalid(m)) for m in state.modules] == [("bad", True), ("good", False)]


def test_root_is_found_above_the_current_folder(tmp_path: Path) -> None:
    write_module(tmp_path, "a", compose_runtime())
    deep = tmp_path / "compose" / "x" / "y"
    deep.mkdir(parents=True)
    assert find_root(None, start=deep) == tmp_path.resolve()
    with pytest.raises(DeclaredStateError, match="no modules/ folder"):
        find_root(None, start=Path("/"))


def test_an_empty_modules_folder_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    with pytest.raises(DeclaredStateError, match="no module manifests"):
        load_declared(tmp_path)


@pytest.mark.parametrize(
    ("folder", "project"),
    [("Apps", "apps"), ("my app.v2", "myappv2"), ("_-x_y", "x_y"), ("web-1", "web-1")],
)
def test_project_names_normalize_like_compose(folder: str, project: str) -> None:
    assert normalize_project_name(folder) == project


def test_compose_project_name_precedence(tmp_path: Path) -> None:
    plain = write_compose(tmp_path, "My_Apps", {"web": {"image": "nginx"}})
    assert load_stack(plain).project == "my_apps"
    named = write_compose(
        tmp_path, "named", {"web": {"image": "nginx"}}, filename="compose.yml", top={"name": "edge"}
    )
    assert load_stack(named).project == "edge"
    env = write_compose(
        tmp_path,
        "envd",
        {"web": {"image": "nginx"}},
        env="COMPOSE_PROJECT_NAME=fromenv\n",
        top={"name": "edge"},
    )
    assert load_stack(env).project == "fromenv"


def test_compose_images_interpolate_from_dotenv(tmp_path: Path) -> None:
    path = write_compose(
        tmp_path,
        "apps",
        {
            "a": {"image": "ghcr.io/x/a:${A_TAG}"},
            "b": {"image": "ghcr.io/x/b:${B_TAG:-2.0}"},
            "c": {"image": "ghcr.io/x/c:${C_TAG:?set C_TAG}"},
            "d": {"image": "ghcr.io/x/d:$$literal"},
            "e": {"build": "./e"},
            "f": {"image": "ghcr.io/x/f:$A_TAG", "container_name": "custom"},
        },
        env="# versions\nexport A_TAG=1.0\nQUOTED='x y'\n",
    )
    services = load_stack(path).services
    assert str(services["a"].image) == "ghcr.io/x/a:1.0"
    assert str(services["b"].image) == "ghcr.io/x/b:2.0"
    assert not services["c"].resolved and "C_TAG" in (services["c"].reason or "")
    assert services["d"].image is None and "invalid tag" in (services["d"].reason or "")
    assert services["e"].build_only and "no registry digest" in (services["e"].reason or "")
    assert str(services["f"].image) == "ghcr.io/x/f:1.0"


def test_each_service_says_what_it_declares_or_why_there_is_nothing_to_compare(
    tmp_path: Path,
) -> None:
    path = write_compose(
        tmp_path,
        "Apps",
        {
            "ok": {"image": "ghcr.io/x/ok:${TAG}"},
            "built": {"build": "./b"},
            "bare": {"ports": ["80"]},
            "number": {"image": 5},
            "unset": {"image": "ghcr.io/x/u:${NOPE}"},
            "bad": {"image": "ghcr.io/x/Bad:1"},
        },
        env="TAG=1.0\n",
    )
    stack = load_stack(path)

    def image(service: str, raw: str | None, resolved: bool, **kw: object) -> ComposeImage:
        ref = parse_reference(raw) if resolved and raw else None
        return ComposeImage(path, "apps", service, raw, ref, resolved=resolved, **kw)  # type: ignore[arg-type]

    assert stack.services == {
        "ok": image("ok", "ghcr.io/x/ok:1.0", True),
        "built": image(
            "built",
            None,
            True,
            build_only=True,
            reason="built from source (build: without image:); no registry digest to compare",
        ),
        "bare": image("bare", None, False, reason="the service declares no image"),
        "number": image("number", None, False, reason="image must be a string, got int"),
        "unset": image(
            "unset",
            None,
            False,
            reason="image 'ghcr.io/x/u:${NOPE}' unresolved: variable NOPE is not set in .env",
        ),
        "bad": image(
            "bad",
            "ghcr.io/x/Bad:1",
            False,
            reason=stack.services["bad"].reason,
        ),
    }
    assert "repository name must be lowercase" in (stack.services["bad"].reason or "")


def test_override_file_replaces_the_image(tmp_path: Path) -> None:
    path = write_compose(tmp_path, "apps", {"web": {"image": "nginx:1.24", "ports": ["80"]}})
    (path.parent / "compose.override.yaml").write_text("services:\n  web:\n    image: nginx:1.25\n")
    web = load_stack(path).services["web"]
    assert web.raw == "nginx:1.25"
    assert web.image == parse_reference("docker.io/library/nginx:1.25")


def test_module_links_to_the_stack_defining_its_service(tmp_path: Path) -> None:
    write_compose(tmp_path, "apps", {"honcho-api": {"image": "ghcr.io/plastic-labs/honcho:3.0.6"}})
    write_module(tmp_path, "honcho-api", compose_runtime())
    (module,) = load_declared(tmp_path).modules
    assert module.compose_project == "apps"
    assert module.compose is not None and module.compose.raw == "ghcr.io/plastic-labs/honcho:3.0.6"


def test_ambiguous_service_without_project_is_invalid(tmp_path: Path) -> None:
    write_compose(tmp_path, "one", {"honcho-api": {"image": "a"}})
    write_compose(tmp_path, "two", {"honcho-api": {"image": "b"}})
    write_module(tmp_path, "ambiguous", compose_runtime())
    write_module(tmp_path, "pinned", compose_runtime(compose_project="two"))
    modules = {m.name: m for m in load_declared(tmp_path).modules}
    assert invalid(modules["ambiguous"])
    assert "several stacks" in (problem(modules["ambiguous"]) or "")
    assert modules["pinned"].compose is not None and modules["pinned"].compose.raw == "b"


def test_compose_project_is_normalized_as_compose_names_the_project(tmp_path: Path) -> None:
    """compose labels the containers of `compose/Apps.Prod/` with project `appsprod`: the
    manifest's `Apps.Prod` must mean the same project, not one nothing carries."""
    write_compose(tmp_path, "Apps.Prod", {"honcho-api": {"image": "a"}})
    write_compose(tmp_path, "other", {"honcho-api": {"image": "b"}})
    write_module(tmp_path, "pinned", compose_runtime(compose_project="Apps.Prod"))
    write_module(tmp_path, "nonsense", compose_runtime(compose_project="..."))
    modules = {m.name: m for m in load_declared(tmp_path).modules}
    assert modules["pinned"].compose_project == "appsprod"
    assert modules["pinned"].compose is not None and modules["pinned"].compose.raw == "a"
    assert "is no compose project name" in (problem(modules["nonsense"]) or "")
    # A docker module reads no compose_project: whatever it holds is left alone.
    write_module(
        tmp_path,
        "plain",
        {
            "host": "h",
            "orchestrator": "docker",
            "container": "c",
            "image_observed": "nginx:1.25",
            "compose_project": "—",
        },
    )
    plain = {m.name: m for m in load_declared(tmp_path).modules}["plain"]
    assert not invalid(plain)


def test_service_in_no_stack_is_still_checked(tmp_path: Path) -> None:
    write_module(tmp_path, "loose", compose_runtime())
    (module,) = load_declared(tmp_path).modules
    assert not invalid(module) and module.compose is None and module.compose_project is None


def test_broken_compose_file_makes_its_modules_invalid(tmp_path: Path) -> None:
    folder = tmp_path / "compose" / "apps"
    folder.mkdir(parents=True)
    (folder / "compose.yaml").write_text("services:\n  honcho-api: [\n")
    write_module(tmp_path, "honcho-api", compose_runtime(compose_project="apps"))
    (module,) = load_declared(tmp_path).modules
    assert invalid(module) and "compose.yaml:3" in (problem(module) or "")


def broken_stack(root: Path, project: str) -> Path:
    folder = root / "compose" / project
    folder.mkdir(parents=True)
    (folder / "compose.yaml").write_text("services:\n  honcho-api: [\n")
    return folder / "compose.yaml"


def test_only_a_stack_that_defines_the_service_is_linked(tmp_path: Path) -> None:
    write_compose(tmp_path, "apps", {"honcho-api": {"image": "ghcr.io/x/api:1"}})
    write_compose(tmp_path, "tools", {"adminer": {"image": "adminer:4"}})
    write_module(tmp_path, "honcho-api", compose_runtime())
    (module,) = load_declared(tmp_path).modules
    assert not invalid(module) and module.compose_project == "apps"
    assert module.compose is not None and module.compose.raw == "ghcr.io/x/api:1"


def test_several_stacks_are_named_relative_to_the_manifest(tmp_path: Path) -> None:
    write_compose(tmp_path, "one", {"honcho-api": {"image": "a"}})
    write_compose(tmp_path, "two", {"honcho-api": {"image": "b"}})
    path = write_module(tmp_path, "api", compose_runtime())
    (module,) = load_declared(tmp_path).modules
    assert module.path == path and module.name == "api"
    assert problem(module) == (
        f"{path}: compose service 'honcho-api' is defined by several stacks "
        "(../../compose/one/compose.yaml, ../../compose/two/compose.yaml); "
        "set spec.runtime.compose_project"
    )


def test_a_broken_stack_invalidates_only_modules_it_could_be_for(tmp_path: Path) -> None:
    broken = broken_stack(tmp_path, "broken")
    write_compose(tmp_path, "apps", {"web": {"image": "nginx:1.25"}})
    # No project named: the broken stack may be the one that defines the service.
    guess = write_module(tmp_path, "guess", compose_runtime())
    # Its project named, and that stack is fine but lacks the service: checked without it.
    elsewhere = write_module(tmp_path, "elsewhere", compose_runtime(compose_project="apps"))
    # Its project named, and that stack is the broken one.
    pinned = write_module(tmp_path, "pinned", compose_runtime(compose_project="broken"))
    modules = {m.name: m for m in load_declared(tmp_path).modules}
    assert modules["guess"].path == guess and modules["pinned"].path == pinned
    assert problem(modules["guess"]) == problem(modules["pinned"])
    said = problem(modules["guess"]) or ""
    assert said.startswith(f"compose stack unusable: {broken}:3")
    ok = modules["elsewhere"]
    assert ok.path == elsewhere and not invalid(ok) and ok.compose is None


@pytest.mark.parametrize(
    ("services", "env"),
    [
        # compose refuses the stack (a base service it lacks), but its files name web alone
        ({"web": {"image": "nginx:1.25", "extends": {"service": "base"}}}, None),
        # compose refuses its project name, its files still name web alone
        ({"web": {"image": "nginx:1.25"}}, "COMPOSE_PROJECT_NAME=${TEAM}\n"),
    ],
)
def test_a_broken_stack_that_names_other_services_leaves_a_module_its_verdict(
    tmp_path: Path, services: dict[str, object], env: str | None
) -> None:
    """One team's broken stack must not make every other compose module of the repository
    invalid: a module whose service no stack defines is still judged by its containers."""
    write_compose(tmp_path, "other", services, env=env)
    write_module(tmp_path, "api", compose_runtime())
    write_module(tmp_path, "web", compose_runtime(compose_service="web"))
    modules = {m.name: m for m in load_declared(tmp_path).modules}
    api = modules["api"]
    assert not invalid(api) and api.compose is None
    assert (problem(modules["web"]) or "").startswith("compose stack unusable: ")


def test_a_plain_docker_module_is_never_linked_to_a_compose_service(tmp_path: Path) -> None:
    write_compose(tmp_path, "apps", {"honcho-api": {"image": "ghcr.io/x/api:1"}})
    write_module(tmp_path, "plain", compose_runtime(orchestrator="docker", container="honcho-api"))
    (module,) = load_declared(tmp_path).modules
    assert not invalid(module) and module.compose is None and module.compose_project is None


def test_every_duplicate_name_after_the_first_is_invalid(tmp_path: Path) -> None:
    folders = [("a", "api"), ("b", "api"), ("c", "web"), ("c-old", "web"), ("e", "api")]
    for folder, name in folders:
        write_module(tmp_path, folder, compose_runtime(), metadata={"name": name})
    modules = load_declared(tmp_path).modules
    # In folder order within a name: the valid one first ("c" before "c-old", though
    # "c-old/module.yaml" sorts before "c/module.yaml" as a string).
    assert [(m.name, m.path.parent.name, invalid(m)) for m in modules] == [
        ("api", "a", False),
        ("api", "b", True),
        ("api", "e", True),
        ("web", "c", False),
        ("web", "c-old", True),
    ]
    first = tmp_path / "modules" / "a" / "module.yaml"
    assert problem(modules[2]) == f"module name 'api' is also used by {first}"


def test_root_errors_say_where_and_what_to_do(tmp_path: Path) -> None:
    if any((folder / "modules").is_dir() for folder in tmp_path.resolve().parents):
        pytest.skip("a modules/ folder above the test's temporary folder would be found")
    with pytest.raises(DeclaredStateError) as caught:
        find_root(str(tmp_path / "nope"))
    assert str(caught.value) == f"platform root {tmp_path / 'nope'} is not a folder (check --root)"
    with pytest.raises(DeclaredStateError) as caught:
        find_root(None, start=tmp_path)
    assert str(caught.value) == (
        f"no modules/ folder of yours at or above {tmp_path.resolve()}; "
        "run inside a platform repository or pass --root"
    )
    with pytest.raises(DeclaredStateError) as caught:
        load_declared(tmp_path)
    assert str(caught.value) == f"no modules/ folder under {tmp_path} (check --root)"


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)))
def test_manifest_loader_never_raises(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "modules" / "fuzz" / "module.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    module = load_manifest(path)
    assert invalid(module) or module.orchestrator is not None


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "host",
                "orchestrator",
                "compose_service",
                "compose_project",
                "container",
                "image_observed",
            ]
        ),
        _yaml_values | st.sampled_from(["docker", "docker-compose", "external", "nginx:1"]),
    )
)
def test_manifest_loader_handles_any_runtime_shape(tmp_path: Path, runtime: dict) -> None:
    path = write_module(tmp_path, "shape", runtime)
    module = load_manifest(path)
    if isinstance(module, InvalidModule):
        # Unusable: one line that names the file, never a crash.
        assert str(path) in module.problem and "\n" not in module.problem
        return
    # Usable: everything its orchestrator needs is there, with the right types.
    assert module.orchestrator is not None
    if module.orchestrator is Orchestrator.EXTERNAL:
        return
    assert isinstance(module.host, str) and module.host
    assert module.declared is not None
    if isinstance(runtime["image_observed"], str):
        assert module.declared_raw == runtime["image_observed"]
    if module.orchestrator is Orchestrator.DOCKER:
        assert module.container == runtime["container"]
    else:
        assert module.compose_service == runtime["compose_service"]


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_compose_loader_never_raises(tmp_path: Path, data: bytes) -> None:
    folder = tmp_path / "compose" / "fuzz"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_bytes(data)
    stack = load_stack(folder / "compose.yaml")
    if stack.problem is not None:
        assert str(folder / "compose.yaml") in stack.problem and not stack.services
        return
    # Every service has an image to compare, or says why it has none.
    for service in stack.services.values():
        assert (service.image is not None) != (service.reason is not None), service
        assert service.resolved or service.reason


def test_two_manifests_with_one_name_make_the_second_invalid(tmp_path: Path) -> None:
    write_module(tmp_path, "a", compose_runtime(), metadata={"name": "api"})
    write_module(tmp_path, "b", compose_runtime(), metadata={"name": "api"})
    first, second = load_declared(tmp_path).modules
    assert not invalid(first) and first.path.parent.name == "a"
    assert invalid(second) and "also used by" in (problem(second) or "")


def test_selecting_modules_by_name(tmp_path: Path) -> None:
    for folder, name in [("a", "api"), ("b", "web"), ("c", "web"), ("d", "dns")]:
        runtime = (
            {"host": "edge", "orchestrator": "external"}
            if name == "dns"
            else compose_runtime(host=f"h-{folder}")
        )
        write_module(tmp_path, folder, runtime, metadata={"name": name})
    state = load_declared(tmp_path)
    assert state.names() == ["api", "dns", "web", "web"]
    assert state.select([]) == state.modules
    # In the order first named, each once; both manifests of a duplicated name.
    picked = state.select(["web", "api", "web"])
    assert [(m.name, m.path.parent.name, invalid(m)) for m in picked] == [
        ("web", "b", False),
        ("web", "c", True),
        ("api", "a", False),
    ]
    with pytest.raises(KeyError) as caught:
        state.select(["api", "nope", "nada"])
    assert caught.value.args == ("nope",)
    # Hosts come from checked modules only: not from the external one, nor the invalid one.
    assert hosts_in_scope(state.modules) == ["h-a", "h-b"]


def test_a_key_written_twice_makes_the_manifest_invalid_not_the_last_one_win(
    tmp_path: Path,
) -> None:
    """A reviewer reading top-down sees the first `until:`; PyYAML kept the last."""
    path = write_module(tmp_path, "web", compose_runtime())
    path.write_text(path.read_text() + "    image_observed: nginx:9\n")
    (module,) = load_declared(tmp_path).modules
    assert invalid(module)
    assert f"{path}:" in (problem(module) or "")
    assert "found duplicate key 'image_observed'" in (problem(module) or "")


def test_a_broken_stack_whose_project_is_unknown_may_be_any_projects(tmp_path: Path) -> None:
    """Its .env (where COMPOSE_PROJECT_NAME may be) cannot be read: a module naming a project
    no usable stack has may be its, and is invalid with its problem, not checked without it."""
    write_compose(tmp_path, "shop", {"api": {"image": "a:1"}}, env='A="open\n')
    write_module(tmp_path, "api", compose_runtime(compose_service="api", compose_project="store"))
    (module,) = load_declared(tmp_path).modules
    assert (problem(module) or "").startswith("compose stack unusable: ")


def test_a_broken_stack_whose_env_names_its_project_is_that_projects_alone(
    tmp_path: Path,
) -> None:
    """Its .env was read and sets COMPOSE_PROJECT_NAME: its project is known even though a
    compose file is not, and a module of another project is judged without it."""
    write_compose(
        tmp_path, "alpha-stack", {"web": {"image": "a:1"}}, env="COMPOSE_PROJECT_NAME=alpha\n"
    )
    (tmp_path / "compose" / "alpha-stack" / "compose.yaml").write_text("services:\n  web: [\n")
    write_module(tmp_path, "b", compose_runtime(compose_service="web", compose_project="beta"))
    write_module(tmp_path, "a", compose_runtime(compose_service="web", compose_project="alpha"))
    modules = {m.name: m for m in load_declared(tmp_path).modules}
    assert not invalid(modules["b"]) and modules["b"].compose is None
    assert "invalid YAML" in (problem(modules["a"]) or "")


def test_a_named_projects_own_broken_stack_is_the_one_reported(tmp_path: Path) -> None:
    """Not a stack sorting before it whose project is unknown and only may be that one."""
    broken_stack(tmp_path, "a-other")
    write_compose(tmp_path, "p", {"web": {"extends": {"service": "web"}}})
    write_module(tmp_path, "w", compose_runtime(compose_service="web", compose_project="p"))
    (module,) = load_declared(tmp_path).modules
    assert "extends loop" in (problem(module) or "")
