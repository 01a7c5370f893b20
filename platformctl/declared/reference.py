"""Docker image references, parsed and normalized as the distribution reference grammar does.

We parse references ourselves rather than wrapping docker-image-py: the grammar is small and
stable (distribution/reference's regexp.go and normalize.go), the library is lightly
maintained, and our callers need exactly three things from it: the normalized repository, the
tag and the digest, plus one clear error message for a manifest author.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
# \w as distribution's Go regexps read it: ASCII letters, digits and "_" (Python's is Unicode).
_WORD = r"[A-Za-z0-9_]"
_TAG = rf"{_WORD}[A-Za-z0-9_.-]{{0,127}}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")


class InvalidReference(ValueError):
    """An image reference that the distribution grammar rejects."""


@dataclass(frozen=True, order=True)
class ImageRef:
    """A normalized image reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The fully qualified repository, e.g. ``docker.io/library/nginx``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The repository as ``docker`` prints it, e.g. ``nginx`` for Docker Hub officials."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
            return self.path[len(OFFICIAL_PREFIX) :]
        return self.path

    @property
    def short_name(self) -> str:
        """The last path component, for narrow table columns."""
        return self.path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


_DIGEST_IN_TEXT = re.compile(r"(sha256:[0-9a-f]{12})[0-9a-f]{8,}")


def short_digest(digest: str) -> str:
    """The 12 hex digits a table shows of ``sha256:<64 hex>`` (or of a bare hex ID)."""
    return digest.rsplit(":", 1)[-1][:12]


def elide_digests(text: str) -> str:
    """``sha256:<64 hex>`` anywhere in ``text`` as ``sha256:<12 hex>…``, for one-line reasons."""
    return _DIGEST_IN_TEXT.sub(r"\1…", text)


def parse_reference(text: str, *, default_tag: bool = True) -> ImageRef:
    """Parse and normalize ``text``; raise :class:`InvalidReference` saying what is wrong.

    With ``default_tag`` a reference with neither tag nor digest gets ``latest``, as
    ``docker pull`` does.
    """
    if not isinstance(text, str):
        raise InvalidReference(f"image reference must be a string, got {type(text).__name__}")
    return _parse(text, default_tag)


def _parse_text(text: str, default_tag: bool) -> ImageRef:
    """:func:`parse_reference` of a string (called through the cache :data:`_parse`)."""
    # Blanks YAML could leave around a value; any other white space (a no-break space pasted
    # from a web page) is refused below, as docker refuses it.
    ref = text.strip(" \t\r\n")
    if not ref:
        raise InvalidReference("image reference is empty")
    if any(c.isspace() for c in ref):
        raise InvalidReference(f"invalid image reference {text!r}: contains white space")
    if _IDENTIFIER_RE.fullmatch(ref):
        raise InvalidReference(
            f"invalid image reference {text!r}: 64 hexadecimal digits are an image ID, "
            "not a repository name"
        )

    digest: str | None = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid digest in image reference {text!r}")
        if not digest.startswith("sha256:") or not SHA256_RE.match(digest):
            raise InvalidReference(
                f"invalid digest in image reference {text!r}: expected sha256: and 64 "
                "lowercase hex digits"
            )

    tag: str | None = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r} in image reference {text!r}")

    domain, path = _split_domain(ref)
    if not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid registry host {domain!r} in image reference {text!r}")
    if path.lower() == path and not _PATH_RE.match(path):
        raise InvalidReference(f"invalid repository name {path!r} in image reference {text!r}")
    if path.lower() != path:
        raise InvalidReference(
            f"invalid image reference {text!r}: repository name must be lowercase"
        )
    if len(f"{domain}/{path}") > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"invalid image reference {text!r}: repository name too long")
    if tag is None and digest is None and default_tag:
        tag = "latest"
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


# Once per distinct string: a fleet names the same few images in thousands of manifests and
# containers, and ImageRef is immutable.
_parse = functools.lru_cache(maxsize=4096)(_parse_text)


def try_parse_reference(text: object) -> ImageRef | None:
    """Parse ``text`` without a default tag, or return None when it is not a reference."""
    if not isinstance(text, str):
        return None
    try:
        return parse_reference(text, default_tag=False)
    except InvalidReference:
        return None


_HEX_RE = re.compile(r"[0-9a-f]+")


def names_image_id(text: str, image_id: str) -> bool:
    """Whether ``text``, a container's ``Config.Image``, is the ID of its image ``image_id``
    rather than a reference: a container started by ID records the ID as typed, whole or any
    prefix of its hex (``docker run 4f3c``)."""
    if "/" in text or "." in text:  # no ID has either: most names are told at once
        return False
    hex_digits = text.removeprefix("sha256:")
    if _HEX_RE.fullmatch(hex_digits) is None:
        return False
    return image_id.removeprefix("sha256:").startswith(hex_digits)


def started_by_id(config_image: str, image_id: str, names: Iterable[ImageRef] = ()) -> bool:
    """Whether a container's ``Config.Image`` is its image's ID rather than a name: it spells
    the ID (:func:`names_image_id`) and, read as a name, is none of ``names`` (those the
    container is compared with, and its image's tags): docker takes a name it has before an ID
    prefix, so ``cafe`` is a repository while an image is tagged ``cafe:latest``."""
    if not names_image_id(config_image, image_id):
        return False
    as_name = try_parse_reference(config_image)
    if as_name is None:
        return True
    spelled = (as_name.repository, as_name.tag or "latest")
    return all((n.repository, n.tag or "latest") != spelled for n in names)


def _split_domain(name: str) -> tuple[str, str]:
    """Split off the registry host as distribution's ``splitDockerDomain`` does."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path
