""".env files and interpolation as compose reads them: v2's rules, and compose's own parser
as the oracle on generated files."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platformctl.declared.interpolate import (
    DotEnv,
    EnvFileError,
    UnresolvedVariable,
    interpolate,
    parse_env,
)
from tests.conftest import IN_CI
from tests.test_compose_differential import CLEAN_ENV, ORACLE, SYSTEM_PYTHON


def known(text: str) -> dict[str, str]:
    return dict(parse_env(text).known)


# --- compose v2's rules, one by one ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('TAG="1.25"   # pinned\n', {"TAG": "1.25"}),
        ("TAG='1.25' # pinned\n", {"TAG": "1.25"}),
        ("TAG=1.25 # pinned\n", {"TAG": "1.25"}),
        ("TAG=1.25#not-a-comment\n", {"TAG": "1.25#not-a-comment"}),
        ("\ufeffTAG=1\n", {"TAG": "1"}),
        ("A=1\r\nB=\"2\"\r\nC='3'\r\n", {"A": "1", "B": "2", "C": "3"}),
        ("export A=1\n", {"A": "1"}),
        ("A = 1\n", {"A": "1"}),
        ("A: 1\n", {"A": "1"}),
        ("A=\n", {"A": ""}),
        ("# only\n\n   \n", {}),
        ("A=1\nA=2\n", {"A": "2"}),
        ("R=ghcr.io/acme\nI=${R}/app:1.0\n", {"R": "ghcr.io/acme", "I": "ghcr.io/acme/app:1.0"}),
        ("I=app:${RELEASE:-2.4}\n", {"I": "app:2.4"}),
        ("E=\nT=${E:-3.0}\n", {"E": "", "T": "3.0"}),
        ("V=4\nT=$V\n", {"V": "4", "T": "4"}),
        ("V=4\nT='${V}'\n", {"V": "4", "T": "${V}"}),
        ('V=4\nT="${V}-x"\n', {"V": "4", "T": "4-x"}),
        ('T="a\\nb\\"c\\\\d"\n', {"T": 'a\nb"c\\d'}),
        ('T="cost \\$5"\n', {"T": "cost $5"}),
        # Octal: \0 and exactly three digits of a byte; anything else keeps a backslash.
        ('O="\\0101\\0377"\n', {"O": "A\xff"}),
        ('O="\\0400|\\012b|\\0"\n', {"O": "\\400|\\12b|\\"}),
        ("T=pa$$word\n", {"T": "pa$word"}),
        ('T="line one\nline two"\n', {"T": "line one\nline two"}),
        ("INHERITED\nA=1\n", {"A": "1"}),
    ],
)
def test_env_values_follow_compose_v2(text: str, expected: dict[str, str]) -> None:
    assert known(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("TAG=1\nTHIS IS NOT A VARIABLE\n", "line 2: key cannot contain a space"),
        ('TAG="1.25\n', "line 1: unterminated quoted value"),
        ("A=1\nB$=2\n", "line 2: unexpected character '$'"),
        ("\n# leading blank line\nA B=1\n", "line 3: key cannot contain a space"),
        ("T='it''s'\n", 'line 1: unexpected character "\'"'),
    ],
)
def test_env_files_compose_refuses_raise_naming_the_line(text: str, fragment: str) -> None:
    with pytest.raises(EnvFileError, match=fragment.replace("$", r"\$")):
        parse_env(text)


def test_a_value_built_on_an_unset_variable_is_unresolved_not_blank() -> None:
    env = parse_env("A=${REGISTRY}/app:1\nB=${A:-x}\nC=${A-}\nD=${NOPE:-ok}\n")
    assert dict(env.known) == {"D": "ok"}
    assert set(env.unresolved) == {"A", "B", "C"}
    assert "A" in env and "REGISTRY" not in env
    with pytest.raises(UnresolvedVariable, match="REGISTRY"):
        interpolate("img:${A}", env)
    # A value set again later is known again.
    assert dict(parse_env("A=$X\nA=1\n").known) == {"A": "1"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("nginx:${TAG}", "nginx:1.25"),
        ("nginx:$TAG", "nginx:1.25"),
        ("nginx:${NOPE:-1.0}", "nginx:1.0"),
        ("nginx:${EMPTY:-1.0}", "nginx:1.0"),
        ("nginx${EMPTY-:1.0}", "nginx"),
        ("nginx:${NOPE-1.0}", "nginx:1.0"),
        ("nginx:${TAG:?need it}", "nginx:1.25"),
        ("nginx:${EMPTY?x}", "nginx:"),
        ("nginx${TAG:+:}${TAG}", "nginx:1.25"),
        ("nginx${EMPTY:+:x}", "nginx"),
        ("nginx${EMPTY+:x}", "nginx:x"),
        ("nginx:${NOPE:-$TAG}", "nginx:1.25"),
        ("${NOPE:-${MIRROR}/library}/nginx", "m.local/library/nginx"),
        ("${NOPE:-{x}}", "{x}"),
        ("a$$b", "a$b"),
        ("$$TAG", "$TAG"),
    ],
)
def test_interpolation_follows_compose_v2(template: str, expected: str) -> None:
    env = DotEnv({"TAG": "1.25", "EMPTY": "", "MIRROR": "m.local"})
    assert interpolate(template, env) == expected


@pytest.mark.parametrize(
    "template",
    ["nginx:${NOPE}", "nginx:$NOPE", "${NOPE:?set it}", "${EMPTY:?x}", "a$", "$1", "${1}", "${A"],
)
def test_unset_and_invalid_expressions_are_unresolved(template: str) -> None:
    with pytest.raises(UnresolvedVariable):
        interpolate(template, DotEnv({"EMPTY": ""}))


# --- compose's own parser on generated files ------------------------------------------------


class EnvOracle:
    """A long-lived docker-compose process answering "how do you read this .env?"."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="env-oracle-"))
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(ORACLE), "env"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=CLEAN_ENV,
            text=True,
        )

    def read(self, data: bytes) -> dict[str, str]:
        path = self.dir / ".env"
        path.write_bytes(data)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(str(path)) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer
        values: dict[str, str] = answer["values"]
        return values

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def env_oracle() -> Iterator[EnvOracle]:
    if shutil.which("docker-compose", path=CLEAN_ENV["PATH"]) is None:
        if IN_CI:
            pytest.fail("docker-compose is needed in CI")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    oracle = EnvOracle()
    try:
        yield oracle
    finally:
        oracle.close()


KEYS = ("TAG", "REGISTRY", "APP_IMAGE", "COMPOSE_PROJECT_NAME", "X_1")
# Text both compose versions read alike: no tab before '#', no lone CR, no '$' except in
# ${KEY} references, no backslash outside the escapes python-dotenv and compose-go share.
_PLAIN = st.text(
    alphabet="abcXYZ019.:/-_@+=,",
    min_size=1,
    max_size=8,
)
_INNER = st.text(alphabet="abcXYZ019.:/-_@ #", min_size=1, max_size=8).map(str.strip).filter(bool)
_COMMENT = st.sampled_from(["", " # pinned", "   # note: x=1", " #"])


@st.composite
def _reference(draw: st.DrawFn, defined: list[str]) -> str:
    if defined and draw(st.booleans()):
        return "${" + draw(st.sampled_from(defined)) + "}"
    return "${UNSET_" + draw(st.sampled_from("AB")) + ":-" + draw(_PLAIN) + "}"


@st.composite
def env_files(draw: st.DrawFn) -> bytes:
    lines: list[str] = []
    defined: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["plain", "double", "single", "comment", "blank"]))
        if kind == "comment":
            lines.append("# " + draw(_INNER))
            continue
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", "  "])))
            continue
        key = draw(st.sampled_from(KEYS))
        parts = [draw(_PLAIN)]
        if kind != "single" and draw(st.booleans()):
            parts.append(draw(_reference(defined)))
        if kind == "plain":
            value = "".join(parts)
        elif kind == "double":
            escape = draw(st.sampled_from(["", "\\n", '\\"', "\\\\", " #x", "'"]))
            # python-dotenv misreads an escape right before the closing quote: not compared.
            value = '"' + "".join(parts) + escape + "z" + '"'
        else:
            value = "'" + "".join(parts) + draw(st.sampled_from(["", " #x", '"'])) + "'"
        export = draw(st.sampled_from(["", "export "]))
        equals = draw(st.sampled_from(["=", " = ", "= "]))
        lines.append(f"{export}{key}{equals}{value}{draw(_COMMENT)}")
        defined.append(key)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + text.encode()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(env_files())
def test_generated_env_files_read_as_compose_reads_them(env_oracle: EnvOracle, data: bytes) -> None:
    theirs = env_oracle.read(data)
    ours = parse_env(data.decode("utf-8"))
    assert set(ours) == set(theirs)
    assert dict(ours.known) == {k: v for k, v in theirs.items() if k in ours.known}
    # Nothing in the generated files refers to a variable left without a default.
    assert not ours.unresolved


@pytest.mark.parametrize(
    "text",
    ['PASSWORD="hunter2-secret\n', "PASSWORD hunter2-secret\n", "PASS\x00WORD=hunter2-secret\n"],
)
def test_env_errors_never_quote_a_value(text: str) -> None:
    with pytest.raises(EnvFileError) as info:
        parse_env(text)
    assert "hunter2" not in str(info.value) and "line 1" in str(info.value)


def test_an_unresolved_env_value_is_not_quoted_in_the_reason() -> None:
    env = parse_env("TOKEN=hunter2-$1-secret\n")
    with pytest.raises(UnresolvedVariable) as info:
        interpolate("img:${TOKEN}", env)
    assert "TOKEN" in str(info.value) and "hunter2" not in str(info.value)


def test_a_dotenv_lists_each_variable_once_known_or_not() -> None:
    env = DotEnv({"A": "1", "B": "2"}, {"B": "refers to $X", "C": "refers to $Y"})
    assert (list(env), len(env)) == (["A", "B", "C"], 3)
    assert "C" in env and "D" not in env


def test_a_required_variables_message_is_shown_as_written_never_expanded() -> None:
    """`${X:?$DB_PASSWORD}` in a compose file or a `.env` line put the password into the
    reason, read in JSON, CI logs and notifications."""
    env = parse_env("DB_PASSWORD=hunter2-secret\nIMG=${NOT_SET:?$DB_PASSWORD}\n")
    assert "hunter2" not in env.unresolved["IMG"]
    assert "$DB_PASSWORD" in env.unresolved["IMG"]
    with pytest.raises(UnresolvedVariable) as info:
        interpolate("nginx:${NOT_SET:?missing $DB_PASSWORD}", env)
    assert "hunter2" not in str(info.value) and "missing $DB_PASSWORD" in str(info.value)


def test_values_that_double_on_every_line_are_refused_before_memory_runs_out() -> None:
    text = "V0=aaaaaaaaaaaaaaaa\n" + "".join(
        f"V{i}=${{V{i - 1}}}${{V{i - 1}}}\n" for i in range(1, 41)
    )
    env = parse_env(text)  # each value stops past 64 KiB: that one and those after unresolved
    assert len(env.known["V12"]) == 16 * 2**12
    assert "expands past 64 KiB" in env.unresolved["V13"]
    assert "V40" in env.unresolved
    many = "BIG=" + "b" * 60_000 + "\n" + "".join(f"C{i}=${{BIG}}\n" for i in range(100))
    with pytest.raises(EnvFileError, match="expand past 4 MiB in all"):
        parse_env(many)


def test_arguments_nested_hundreds_deep_are_invalid_not_a_stack_overflow() -> None:
    deep = "${X:-" * 600 + "nginx" + "}" * 600
    with pytest.raises(UnresolvedVariable, match="nested deeper than 32"):
        interpolate(deep, DotEnv())
    env = parse_env(f"IMG={deep}\n")
    assert "nested deeper" in env.unresolved["IMG"]
    assert interpolate("${X:-" * 30 + "nginx" + "}" * 30, DotEnv()) == "nginx"
