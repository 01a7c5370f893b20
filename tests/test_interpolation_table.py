"""Compose interpolation and ``.env`` parsing, case by case against what docker compose does."""

from __future__ import annotations

import pytest

from platformctl.declared.interpolate import UnresolvedVariable, interpolate

ENV = {"SET": "v", "EMPTY": "", "NESTED": "n", "A_B": "ab"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("$SET", "v"),
        ("x$SET.y", "xv.y"),
        ("$A_B", "ab"),
        ("${SET}", "v"),
        ("a${SET}b${SET}c", "avbvc"),
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("a$$$SET", "a$v"),
        ("${SET:-d}", "v"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d}", "d"),
        ("${SET-d}", "v"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${UNSET:-}", ""),
        ("${UNSET:-${NESTED}}", "n"),
        ("${UNSET:-${UNSET2:-deep}}", "deep"),
        ("${UNSET-${NESTED}x}", "nx"),
        ("${SET:?must}", "v"),
        ("${EMPTY?must}", ""),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${SET+alt}", "alt"),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:+${NESTED}}", "n"),
        ("${EMPTY+${NESTED}}", "n"),
    ],
)
def test_interpolation_matches_compose(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$UNSET", "variable UNSET is not set in .env"),
        ("${UNSET}", "variable UNSET is not set in .env"),
        ("${UNSET:?tell me}", "variable UNSET is required: tell me"),
        ("${EMPTY:?tell me}", "variable EMPTY is required: tell me"),
        ("${UNSET?}", "variable UNSET is required: not set"),
        ("${SET", "invalid interpolation: '${' without its closing '}'"),
        ("${UNSET:-${SET}", "invalid interpolation: '${' without its closing '}'"),
        ("${1BAD}", "invalid interpolation: '${' must start with a variable name"),
        # compose refuses a lone '$' (docker-compose config: "Invalid interpolation format")
        (
            "cost: 5$",
            "invalid interpolation: '$' must be followed by a name, '{' or '$' "
            "(write '$$' for a literal '$')",
        ),
        (
            "$-x",
            "invalid interpolation: '$' must be followed by a name, '{' or '$' "
            "(write '$$' for a literal '$')",
        ),
        ("${SET:-$UNSET}", None),
    ],
)
def test_what_cannot_be_resolved_says_why(text: str, message: str | None) -> None:
    if message is None:  # a default that is never used is never expanded
        assert interpolate(text, ENV) == "v"
        return
    with pytest.raises(UnresolvedVariable) as err:
        interpolate(text, ENV)
    assert str(err.value) == message
