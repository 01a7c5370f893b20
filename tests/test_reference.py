"""Image references normalize as Docker's distribution grammar does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platformctl.declared.reference import InvalidReference, parse_reference, short_digest

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io/library/nginx", "latest", None),
        ("nginx:1.25", "docker.io/library/nginx", "1.25", None),
        ("docker.io/library/nginx:1.25", "docker.io/library/nginx", "1.25", None),
        ("index.docker.io/library/nginx:1.25", "docker.io/library/nginx", "1.25", None),
        ("bitnami/redis:7", "docker.io/bitnami/redis", "7", None),
        ("ghcr.io/plastic-labs/honcho:3.0.6", "ghcr.io/plastic-labs/honcho", "3.0.6", None),
        ("localhost:5000/org/app:1.2.3", "localhost:5000/org/app", "1.2.3", None),
        ("localhost/app", "localhost/app", "latest", None),
        (f"nginx@{DIGEST}", "docker.io/library/nginx", None, DIGEST),
        (f"ghcr.io/a/b:1@{DIGEST}", "ghcr.io/a/b", "1", DIGEST),
        ("127.0.0.1:5000/x/y_z.w-v:tag_1.0-rc", "127.0.0.1:5000/x/y_z.w-v", "tag_1.0-rc", None),
    ],
)
def test_references_normalize_like_docker(
    text: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, digest)


def test_short_and_long_forms_are_the_same_reference() -> None:
    assert parse_reference("nginx:1.25") == parse_reference("docker.io/library/nginx:1.25")
    assert parse_reference("nginx:1.25").familiar_repository == "nginx"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Nginx:1.25", "lowercase"),
        ("ghcr.io/Plastic/honcho:1", "lowercase"),
        ("nginx:", "invalid tag"),
        ("nginx@sha256:abc", "digest"),
        (f"nginx@sha256:{'AB' * 32}", "lowercase hex"),
        ("nginx latest", "white space"),
        ("", "empty"),
        ("-nginx", "invalid repository"),
        ("nginx:" + "x" * 200, "invalid tag"),
        # Go's \w, which the grammar is written in, is ASCII: Python's matches any letter.
        ("nginx:1.25é", "invalid tag"),
        ("nginx:\u0663", "invalid tag"),  # an Arabic-Indic digit three
        ("nginx:1.25\u00a0", "white space"),  # a no-break space, pasted from a web page
        ("f691df868290275974103c307537784a0e457ecfd8f188e06e52b8de8d1439f8", "image ID"),
    ],
)
def test_invalid_references_are_rejected_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        parse_reference(text)


def test_blanks_around_a_reference_and_a_hex_name_with_a_tag_are_still_references() -> None:
    assert str(parse_reference(" nginx:1.25\n")) == "docker.io/library/nginx:1.25"
    assert parse_reference(f"{'f6' * 32}:1").path == f"library/{'f6' * 32}"


@given(st.text(max_size=300))
def test_parser_never_raises_anything_but_reference_error(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReference:
        return
    # Whatever parses must parse again to the same value from its normalized form.
    assert parse_reference(str(ref)) == ref


def test_a_reference_with_tag_and_digest_prints_both() -> None:
    digest = "sha256:" + "ab" * 32
    assert str(parse_reference(f"ghcr.io/x/app:1.0@{digest}")) == f"ghcr.io/x/app:1.0@{digest}"


def test_a_short_digest_is_twelve_hex_digits_with_or_without_its_algorithm() -> None:
    assert short_digest("sha256:" + "0123456789ab" * 5) == "0123456789ab"
    assert short_digest("0123456789ab" * 5) == "0123456789ab"
