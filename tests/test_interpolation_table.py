"""Compose interpolation and ``.env`` parsing, case by case against what docker compose does."""

from __future__ import annotations

from pathlib import Path

import pytest

from platformctl.declared.interpolate import UnresolvedVariable, interpolate, read_env_file

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
        ("cost: 5$", "cost: 5$"),
        ("$-x", "$-x"),
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
        ("x:${SET}$", "x:v$"),
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
        ("${SET", "unterminated ${ in '${SET'"),
        ("${UNSET:-${SET}", "unterminated ${ in '${UNSET:-${SET}'"),
        ("${1BAD}", "invalid interpolation ${1BAD}"),
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


def test_dotenv_lines_read_as_compose_reads_them(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# a comment\n"
        "\n"
        "PLAIN=1.0\n"
        "export EXPORTED=2.0\n"
        "export   SPACED = 3.0  \n"
        'DOUBLE="x y"\n'
        "SINGLE='a # b'\n"
        "COMMENTED=4.0 # trailing comment\n"
        "HASH=a#b\n"
        "EQUALS=a=b=c\n"
        "MISMATCHED=\"x'\n"
        'Q=""\n'
        "ONE='\n"
        "not a line\n"
        "1BAD=x\n"
        "   # indented comment\n"
    )
    assert read_env_file(path) == {
        "PLAIN": "1.0",
        "EXPORTED": "2.0",
        "SPACED": "3.0",
        "DOUBLE": "x y",
        "SINGLE": "a # b",
        "COMMENTED": "4.0",
        "HASH": "a#b",
        "EQUALS": "a=b=c",
        "MISMATCHED": "\"x'",
        "Q": "",
        "ONE": "'",
    }


def test_a_dotenv_that_is_not_utf8_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"TAG=caf\xe9\nNEXT=1\n")
    assert read_env_file(path) == {"TAG": "caf\ufffd", "NEXT": "1"}
