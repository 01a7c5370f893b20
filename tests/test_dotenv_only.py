"""Compose interpolation reads the stack's ``.env`` only, never the environment of the shell
running platformctl (README: "the environment of the shell running platformctl is not the one
that deployed the stack")."""

from __future__ import annotations

from pathlib import Path

import pytest

from platformctl.declared.interpolate import UnresolvedVariable, interpolate
from tests.conftest import load_stack, write_compose


@pytest.fixture
def shell_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values the shell running platformctl has and the stack's .env does not."""
    for name, value in {
        "TAG": "9.9",
        "REQUIRED": "9.9",
        "EMPTY": "9.9",
        "ONLY_SHELL": "9.9",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("shell_env")
@pytest.mark.parametrize("text", ["x:$TAG", "x:${TAG}", "x:${REQUIRED:?set it}", "x:${REQUIRED?}"])
def test_a_variable_only_the_shell_has_is_unresolved(text: str) -> None:
    with pytest.raises(UnresolvedVariable):
        interpolate(text, {})


@pytest.mark.usefixtures("shell_env")
def test_defaults_apply_as_if_the_shell_had_nothing() -> None:
    assert interpolate("x:${TAG:-1.0}", {}) == "x:1.0"
    assert interpolate("x:${TAG-1.0}", {}) == "x:1.0"
    assert interpolate("x:${EMPTY:-1.0}", {"EMPTY": ""}) == "x:1.0"
    assert interpolate("x:${TAG:+set}", {}) == "x:"


@pytest.mark.usefixtures("shell_env")
def test_a_stack_reads_its_dotenv_and_not_the_shell(tmp_path: Path) -> None:
    path = write_compose(
        tmp_path,
        "apps",
        {
            "a": {"image": "ghcr.io/x/a:${TAG}"},
            "b": {"image": "ghcr.io/x/b:${ONLY_SHELL:-2.0}"},
            "c": {"image": "ghcr.io/x/c:${ONLY_SHELL}"},
        },
        env="TAG=1.0\n",
    )
    services = load_stack(path).services
    assert services["a"].raw == "ghcr.io/x/a:1.0"  # .env wins over the shell's 9.9
    assert services["b"].raw == "ghcr.io/x/b:2.0"
    assert not services["c"].resolved and "ONLY_SHELL" in (services["c"].reason or "")


@pytest.mark.usefixtures("shell_env")
def test_a_stack_without_dotenv_ignores_the_shell_too(tmp_path: Path) -> None:
    path = write_compose(tmp_path, "apps", {"a": {"image": "ghcr.io/x/a:${TAG}"}})
    service = load_stack(path).services["a"]
    assert not service.resolved and service.image is None
