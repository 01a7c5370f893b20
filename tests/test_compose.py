"""Compose stacks compose itself would refuse, and the rules the differential corpus cannot
ask compose v1 about: one clear problem per stack, never a guess."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from platformctl.declared.compose import Stack, load_stack_dir, normalize_project_name
from platformctl.declared.manifests import load_declared
from tests.conftest import write_module


def stack_with(tmp_path: Path, files: dict[str, str], folder: str = "apps") -> Path:
    path = tmp_path / "compose" / folder
    path.mkdir(parents=True)
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    return path


def readable_stack(tmp_path: Path, files: dict[str, str]) -> Stack:
    """The stack of ``files``, which must read without a problem."""
    stack = load_stack_dir(stack_with(tmp_path, files), tmp_path)
    assert stack is not None and stack.problem is None, stack and stack.problem
    return stack


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        (
            {"compose.yaml": "services:\n  a:\n    extends: b\n  b:\n    extends: {service: a}\n"},
            "extends loop",
        ),
        (
            {"compose.yaml": "services:\n  a:\n    extends: {service: nope}\n"},
            "extends service 'nope', which compose.yaml does not define",
        ),
        (
            {"compose.yaml": "services:\n  a:\n    extends: {file: gone.yaml, service: b}\n"},
            "extends.file gone.yaml does not exist",
        ),
        (
            {".env": "COMPOSE_FILE=base.yaml:gone.yaml\n", "base.yaml": "services: {}\n"},
            "COMPOSE_FILE names gone.yaml, which does not exist",
        ),
        ({".env": "COMPOSE_FILE=base.yaml::x.yaml\n"}, "has an empty entry"),
        ({".env": "COMPOSE_FILE=${WHERE}/compose.yaml\n"}, "WHERE is not set"),
        (
            {".env": "COMPOSE_PROJECT_NAME=${TEAM}-apps\n", "compose.yaml": "services: {}\n"},
            "TEAM is not set",
        ),
        (
            {".env": "COMPOSE_PROJECT_NAME=__\n", "compose.yaml": "services: {}\n"},
            "has no character a compose project name may hold",
        ),
        ({"compose.yaml": "name: ${STACK}\nservices: {}\n"}, "STACK is not set"),
        ({"compose.yaml": "services: {}\n", ".env": 'A="open\n'}, "line 1: unterminated"),
        ({"compose.yaml": "- a list\n"}, "a compose file must be a mapping"),
        ({"compose.yaml": "services: [a]\n"}, "'services' must be a mapping"),
    ],
)
def test_stacks_compose_would_refuse_carry_one_problem(
    tmp_path: Path, files: dict[str, str], fragment: str
) -> None:
    stack = load_stack_dir(stack_with(tmp_path, files), tmp_path)
    assert stack is not None
    assert fragment in (stack.problem or ""), stack.problem


def test_a_folder_name_without_usable_characters_needs_a_name(tmp_path: Path) -> None:
    stack = load_stack_dir(stack_with(tmp_path, {"compose.yaml": "services: {}\n"}, "__"), tmp_path)
    assert stack is not None and "empty compose project name" in (stack.problem or "")
    named = stack_with(tmp_path, {"compose.yaml": "name: Edge\nservices: {}\n"}, "-_")
    loaded = load_stack_dir(named, tmp_path)
    assert loaded is not None and loaded.problem is None and loaded.project == "edge"


def test_a_folder_with_no_compose_file_is_not_a_stack(tmp_path: Path) -> None:
    assert load_stack_dir(stack_with(tmp_path, {".env": "TAG=1\n"}), tmp_path) is None
    assert load_stack_dir(stack_with(tmp_path, {"notes.md": "x"}, "docs"), tmp_path) is None


def test_the_override_beside_compose_yaml_reaches_the_module(tmp_path: Path) -> None:
    # Issue: compose.yaml beside docker-compose.override.yml used to ignore the override.
    stack_with(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:1.24\n",
            "docker-compose.override.yml": "services:\n  web:\n    image: nginx:1.25\n",
            ".env": 'COMPOSE_PROJECT_NAME="SB-Store"  # shared\n',
        },
    )
    write_module(
        tmp_path,
        "web",
        {
            "host": "edge",
            "orchestrator": "docker-compose",
            "compose_service": "web",
            "image_observed": "nginx:1.25",
        },
    )
    (module,) = load_declared(tmp_path).modules
    assert module.compose is not None and module.compose.raw == "nginx:1.25"
    assert module.compose_project == "sb-store"


@pytest.mark.parametrize(
    ("name", "project"),
    [("SB-Store", "sb-store"), ("My App.v2", "myappv2"), ("_-x_y", "x_y"), ("web-1", "web-1")],
)
def test_one_normalization_for_folders_env_and_name(name: str, project: str) -> None:
    assert normalize_project_name(name) == project


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"compose.yaml": "include: [self.yaml]\n", "self.yaml": "include: [self.yaml]\n"}, "loop"),
        (
            {"compose.yaml": "include: [a.yaml]\n", "a.yaml": "include: [../apps/compose.yaml]\n"},
            "include loop (compose.yaml -> a.yaml -> compose.yaml)",
        ),
        ({"compose.yaml": "include: [gone.yaml]\n"}, "include: gone.yaml does not exist"),
        (
            {"compose.yaml": "include: ['git@github.com:acme/stack.git']\n"},
            "is a remote resource, not read here",
        ),
        (
            {"compose.yaml": "include: [{path: 'oci://registry/stack:1'}]\n"},
            "is a remote resource, not read here",
        ),
        ({"compose.yaml": "include: [{env_file: x.env}]\n"}, "a mapping with path:"),
        ({"compose.yaml": "include: {path: a.yaml}\n"}, "include must be a list"),
        ({"compose.yaml": "include: ['${WHERE}/compose.yaml']\n"}, "WHERE is not set"),
        (
            {
                "compose.yaml": "include: [{path: a.yaml, env_file: gone.env}]\n",
                "a.yaml": "services: {}\n",
            },
            "env_file",
        ),
        (
            {
                "compose.yaml": "include: [a.yaml]\nservices:\n  web:\n    image: nginx:1.25\n",
                "a.yaml": "services:\n  web:\n    image: nginx:1.24\n",
            },
            "defines service 'web', which is also defined here",
        ),
        (
            {
                "compose.yaml": "include: [a.yaml, b.yaml]\n",
                "a.yaml": "services:\n  web:\n    image: nginx:1.25\n",
                "b.yaml": "services:\n  web:\n    image: nginx:1.24\n",
            },
            "service 'web' is defined by two included files",
        ),
        (
            {
                "compose.yaml": "include: [a.yaml]\n",
                "a.yaml": "services:\n  web:\n    image: x\n    extends: {service: nope}\n",
            },
            "extends service 'nope', which a.yaml does not define",
        ),
    ],
)
def test_includes_compose_would_refuse_carry_one_problem(
    tmp_path: Path, files: dict[str, str], fragment: str
) -> None:
    stack = load_stack_dir(stack_with(tmp_path, files), tmp_path)
    assert stack is not None
    assert fragment in (stack.problem or ""), stack.problem


def test_an_include_that_leaves_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "platform"
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("services:\n  web:\n    image: nginx:1.25\n")
    stack = load_stack_dir(stack_with(root, {"compose.yaml": f"include: [{outside}]\n"}), root)
    assert stack is not None and "outside the platform root" in (stack.problem or "")


def test_files_that_include_each_other_many_times_over_are_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file includes the next one four times: 4**12 reads, were the files and the
    models they make not kept for the stack."""
    from platformctl.declared import compose

    reads: list[str] = []
    load = compose.load_yaml

    def counted(path: Path, *args: object, **kwargs: object) -> object:
        reads.append(path.name)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(compose, "load_yaml", counted)
    files = {"compose.yaml": "include: [f0.yaml]\n"}
    for level in range(12):
        files[f"f{level}.yaml"] = "include: [" + ", ".join([f"f{level + 1}.yaml"] * 4) + "]\n"
    files["f12.yaml"] = "services:\n  web:\n    image: nginx:1.25\n"
    stack = readable_stack(tmp_path, files)
    assert stack.services["web"].raw == "nginx:1.25"
    assert sorted(reads) == sorted(files)


def test_a_stack_that_includes_more_than_256_files_is_refused(tmp_path: Path) -> None:
    files = {"compose.yaml": "include: [" + ", ".join(f"i{n}.yaml" for n in range(300)) + "]\n"}
    files |= {f"i{n}.yaml": f"services:\n  s{n}:\n    image: nginx\n" for n in range(300)}
    stack = load_stack_dir(stack_with(tmp_path, files), tmp_path)
    assert stack is not None and "more than 256" in (stack.problem or "")


def test_an_included_service_reaches_its_module_under_its_own_file(tmp_path: Path) -> None:
    stack_with(
        tmp_path,
        {
            "compose.yaml": "include:\n  - path: db/compose.yaml\n",
            "db/compose.yaml": "services:\n  db:\n    image: postgres:${DB_TAG}\n",
            "db/.env": "DB_TAG=15.6\n",
        },
    )
    write_module(
        tmp_path,
        "db",
        {
            "host": "edge",
            "orchestrator": "docker-compose",
            "compose_service": "db",
            "image_observed": "postgres:16.2",
        },
    )
    (module,) = load_declared(tmp_path).modules
    assert module.compose is not None and module.compose.raw == "postgres:15.6"
    assert module.compose.path == tmp_path / "compose" / "apps" / "db" / "compose.yaml"
    assert module.compose_project == "apps"


def test_a_broken_stack_that_includes_files_may_define_any_service(tmp_path: Path) -> None:
    """Its includes were not all read: which services it defines is not known."""
    stack = load_stack_dir(
        stack_with(
            tmp_path,
            {"compose.yaml": "include: [gone.yaml]\nservices:\n  web:\n    image: nginx\n"},
        ),
        tmp_path,
    )
    assert stack is not None and stack.problem is not None
    assert stack.may_define("web") and stack.may_define("db")


def test_compose_merge_tags_reset_and_replace_what_the_files_before_gave(tmp_path: Path) -> None:
    stack = load_stack_dir(
        stack_with(
            tmp_path,
            {
                "compose.yaml": "name: shop\nservices:\n  web:\n    image: nginx:1.24\n"
                "  db:\n    image: postgres:16\n",
                "compose.override.yaml": "name: !reset null\nservices: !reset {}\n",
            },
        ),
        tmp_path,
    )
    assert stack is not None and stack.problem is None and stack.services == {}
    assert stack.project == "apps"
    only = load_stack_dir(
        stack_with(
            tmp_path,
            {"compose.yaml": "services:\n  web:\n    build: .\n    image: !reset nginx:1.24\n"},
            "built",
        ),
        tmp_path,
    )
    assert only is not None and only.problem is None
    assert only.services["web"].build_only and only.services["web"].raw is None


def test_only_compose_files_read_the_merge_tags(tmp_path: Path) -> None:
    """A manifest is plain data: compose's tags there, and any other tag in a compose file,
    are still invalid YAML."""
    stack = load_stack_dir(
        stack_with(tmp_path, {"compose.yaml": "services:\n  web:\n    image: !env TAG\n"}),
        tmp_path,
    )
    assert stack is not None and "could not determine a constructor for the tag '!env'" in (
        stack.problem or ""
    )
    write_module(
        tmp_path,
        "web",
        {
            "host": "edge",
            "orchestrator": "docker",
            "container": "web",
            "image_observed": "!reset nginx",
        },
    )
    manifest = tmp_path / "modules" / "web" / "module.yaml"
    manifest.write_text(manifest.read_text().replace("'!reset nginx'", "!reset nginx"))
    (module,) = load_declared(tmp_path).modules
    assert "tag '!reset'" in (getattr(module, "problem", "") or "")


def test_each_compose_file_is_read_once_however_often_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """extends: chains between two files, and COMPOSE_FILE naming a file again, read the
    file at every mention: a 20 KB file of long chains between two 1 MiB files took a
    minute, and 2,000 mentions of one 1 MiB file held 2 GB."""
    from platformctl.declared import compose

    reads: list[str] = []
    load = compose.load_yaml

    def counted(path: Path, *args: object, **kwargs: object) -> object:
        reads.append(path.name)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(compose, "load_yaml", counted)
    a = ["services:\n"] + [
        f"  s{i}:\n    extends: {{file: b.yaml, service: s{i + 1}}}\n" for i in range(0, 40, 2)
    ]
    b = ["services:\n"] + [
        f"  s{i}:\n    extends: {{file: a.yaml, service: s{i + 1}}}\n" for i in range(1, 40, 2)
    ]
    a.append("  s40:\n    image: nginx:1.25\n")
    users = "".join(f"  svc{i}:\n    extends: {{file: a.yaml, service: s0}}\n" for i in range(30))
    stack = readable_stack(
        tmp_path,
        {
            ".env": "COMPOSE_FILE=" + ":".join(["compose.yaml"] * 40) + "\n",
            "compose.yaml": "services:\n" + users,
            "a.yaml": "".join(a),
            "b.yaml": "".join(b),
        },
    )
    assert stack.services["svc29"].raw == "nginx:1.25"
    assert sorted(reads) == ["a.yaml", "b.yaml", "compose.yaml"]


def test_compose_file_naming_more_than_64_files_is_refused(tmp_path: Path) -> None:
    entries = ":".join(["compose.yaml"] * 65)
    stack = load_stack_dir(
        stack_with(
            tmp_path, {".env": f"COMPOSE_FILE={entries}\n", "compose.yaml": "services: {}\n"}
        ),
        tmp_path,
    )
    assert stack is not None and "COMPOSE_FILE names more than 64 files" in (stack.problem or "")


def test_an_included_env_refers_to_the_including_stacks_variables(tmp_path: Path) -> None:
    """compose reads an included model's .env with the including model's variables to refer
    to: `DB_TAG=${PG_TAG:-15}` is 16 when the stack's .env sets PG_TAG=16."""
    stack = readable_stack(
        tmp_path,
        {
            ".env": "PG_TAG=16\n",
            "compose.yaml": "include: [db/compose.yaml]\n",
            "db/.env": "DB_TAG=${PG_TAG:-15}\n",
            "db/compose.yaml": "services:\n  db:\n    image: postgres:${DB_TAG}\n",
        },
    )
    assert stack.services["db"].raw == "postgres:16"


def test_an_included_service_the_stack_also_defines_conflicts_only_by_its_image(
    tmp_path: Path,
) -> None:
    """Compared once each is filled in from its own variables (compose compares the loaded
    models); aliases that expand a definition a millionfold are never walked."""
    bomb = "x-a: &a0 [1, 2]\n" + "".join(
        f"x-{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n" for i in range(1, 12)
    )
    stack = readable_stack(
        tmp_path,
        {
            ".env": "IMG=redis:7.2\n",
            "compose.yaml": "include: [cache.yaml]\nservices:\n  cache:\n    image: ${IMG}\n"
            "    labels: {a: 1}\n",
            "cache.yaml": bomb + "services:\n  cache:\n    image: redis:7.2\n    x: *a11\n",
        },
    )
    assert stack.services["cache"].raw == "redis:7.2"


def test_override_on_a_service_or_the_services_replaces_them_whole(tmp_path: Path) -> None:
    stack = load_stack_dir(
        stack_with(
            tmp_path,
            {
                "compose.yaml": "services:\n  web:\n    build: .\n    image: nginx:1.24\n"
                "  worker:\n    image: busybox\n",
                "compose.override.yaml": "services:\n  web: !override\n    image: nginx:1.27\n",
            },
        ),
        tmp_path,
    )
    assert stack is not None and stack.problem is None
    assert not stack.services["web"].build_only and stack.services["web"].raw == "nginx:1.27"
    assert "build" not in str(stack.services["web"].reason)
    whole = load_stack_dir(
        stack_with(
            tmp_path,
            {
                "compose.yaml": "services:\n  web:\n    image: nginx:1.24\n  worker:\n"
                "    image: busybox\n",
                "compose.override.yaml": "services: !override\n  web:\n    image: nginx:1.27\n",
            },
            "whole",
        ),
        tmp_path,
    )
    assert whole is not None and set(whole.services) == {"web"}


def test_a_key_that_cannot_be_one_is_invalid_yaml_not_a_traceback(tmp_path: Path) -> None:
    stack = load_stack_dir(
        stack_with(tmp_path, {"compose.yaml": "services:\n  ? !override {a: 1}\n  : {}\n"}),
        tmp_path,
    )
    assert stack is not None and "invalid YAML" in (stack.problem or "")


@pytest.mark.parametrize(
    ("keys", "said"),
    [
        ("{on: 1, yes: 2}", "keys 'on' and 'yes' read as the same key"),
        ("{1: a, '1': b}", "found duplicate key '1'"),
        ("{web: a, 'web': b}", "found duplicate key 'web'"),
    ],
)
def test_two_keys_one_would_replace_are_refused_never_merged(
    tmp_path: Path, keys: str, said: str
) -> None:
    """compose (yaml.v3) refuses a key written twice, text for text; `on` and `yes` are two
    keys to it, both true to this YAML 1.1 reader, where one would silently replace the
    other: refused too, saying so."""
    stack = load_stack_dir(
        stack_with(tmp_path, {"compose.yaml": f"x-flags: {keys}\nservices: {{}}\n"}),
        tmp_path,
    )
    assert stack is not None and said in (stack.problem or ""), stack and stack.problem


@pytest.mark.parametrize(("links", "refused"), [(80, False), (150, False), (250, True)])
def test_a_long_extends_chain_reads_the_same_in_any_order(
    tmp_path: Path, links: int, refused: bool
) -> None:
    """Each chain is remembered from where it was first met: its depth was counted from
    there, so a chain past the bound passed listed base first and was refused tip first."""
    services = [f"  s{i}:\n    extends: s{i + 1}\n" for i in range(links)]
    for order, listed in (("down", services), ("up", services[::-1])):
        text = "services:\n" + "".join(listed) + f"  s{links}:\n    image: nginx:1.25\n"
        stack = load_stack_dir(stack_with(tmp_path, {"compose.yaml": text}, order), tmp_path)
        assert stack is not None
        if refused:
            assert "extends chain deeper than 200" in (stack.problem or ""), order
        else:
            assert stack.problem is None, (order, stack.problem)
            assert stack.services["s0"].raw == "nginx:1.25"
        shutil.rmtree(tmp_path / "compose")


def test_an_included_env_file_looks_up_the_stacks_variables_before_the_files_before_it(
    tmp_path: Path,
) -> None:
    """compose-go's GetEnvFromFile looks a variable up in the including model's variables,
    then in the env files read before this one."""
    stack = readable_stack(
        tmp_path,
        {
            ".env": "TAG=outer\n",
            "compose.yaml": "include:\n  - path: db.yaml\n    env_file: [a.env, b.env]\n",
            "a.env": "TAG=from-a\n",
            "b.env": "IMG=postgres:${TAG}\n",
            "db.yaml": "services:\n  db:\n    image: ${IMG}\n",
        },
    )
    assert stack.services["db"].raw == "postgres:outer"


@pytest.mark.parametrize(
    "image", ["&x [*x]", "[&a [1, 2], [*a, *a], [*a, *a]]"], ids=["itself", "aliases"]
)
def test_an_image_that_is_no_string_is_compared_without_being_walked(
    tmp_path: Path, image: str
) -> None:
    """Both definitions' images were compared value by value: a list holding itself
    overflowed the stack, nested aliases took exponential time."""
    stack = readable_stack(
        tmp_path,
        {
            "compose.yaml": f"include: [c.yaml]\nservices:\n  cache:\n    image: {image}\n",
            "c.yaml": f"services:\n  cache:\n    image: {image}\n",
        },
    )
    assert "image must be a string, got list" in (stack.services["cache"].reason or "")


def test_a_broken_stack_that_overrides_its_services_still_names_them(tmp_path: Path) -> None:
    stack = load_stack_dir(
        stack_with(
            tmp_path,
            {"compose.yaml": "name: ${UNSET}\nservices: !override\n  web:\n    image: nginx\n"},
        ),
        tmp_path,
    )
    assert stack is not None and stack.problem is not None
    assert stack.may_define("web") and not stack.may_define("db")


def test_env_files_a_stacks_includes_read_are_bounded_in_all(tmp_path: Path) -> None:
    big = "".join(f"K{i}=" + "v" * 200 + "\n" for i in range(5000))  # about 1 MiB
    entries = "".join(
        f"  - path: db.yaml\n    env_file: [{'big.env, ' * n}big.env]\n" for n in range(6)
    )
    stack = load_stack_dir(
        stack_with(
            tmp_path,
            {
                "compose.yaml": f"include:\n{entries}",
                "big.env": big,
                "db.yaml": "services:\n  db:\n    image: postgres\n",
            },
        ),
        tmp_path,
    )
    assert stack is not None and "more than 4 MiB read" in (stack.problem or "")
