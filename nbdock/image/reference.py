"""Image references, parsed and normalised exactly as Docker does (distribution/reference).

``busybox`` means ``docker.io/library/busybox:latest``; ``localhost/x`` and ``host:5000/a/b`` name
other registries; ``name@sha256:…`` pins content. The grammar below is the one in
distribution/reference's regexp.go, kept as a few named pieces so each rule can be read alone::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]      (a dotted name, "localhost", or [ipv6])
    path-comp  := [a-z0-9]+ (separator [a-z0-9]+)*     separator := [._] | __ | -+
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex   (sha256/sha384/sha512 with lowercase hex of fixed length)

Normalisation (``splitDockerDomain``): a single component is a Docker Hub official image
(``library/``); a first component is a registry only if it is ``localhost``, contains ``.`` or
``:``, or has uppercase letters; ``index.docker.io`` is ``docker.io``. Repository names must be
lowercase — ``FROM UBUNTU`` fails with a hint naming ``ubuntu``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple

from nbdock.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255
TAG_MAX = 128

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")


# The grammar's regexps are compiled on first use (~0.9 ms in all): commands that name no image
# (``ps``, ``logs``, ...) and lookups by id never need them.
@cache
def _reference_re() -> re.Pattern[str]:
    return re.compile(rf"^((?:{_DOMAIN}/)?{_REMOTE})(?::({_TAG}))?(?:@({_DIGEST}))?$")


@cache
def _name_re() -> re.Pattern[str]:
    return re.compile(rf"^(?:({_DOMAIN})/)?({_REMOTE})$")


@cache
def _official_re() -> re.Pattern[str]:
    """One path component and maybe a tag: ``busybox``, ``python:3.12`` (~0.1 ms to compile)."""
    return re.compile(rf"^({_PATH_COMPONENT})(?::({_TAG}))?$")


@cache
def _tag_re() -> re.Pattern[str]:
    return re.compile(rf"^{_TAG}$")


@cache
def _digest_re() -> re.Pattern[str]:
    return re.compile(rf"^{_DIGEST}$")


# go-digest's registered algorithms and the exact encoding each requires.
_DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


class Reference(NamedTuple):
    """A normalised image reference: ``domain/path[:tag][@digest]``.

    ``tag`` is ``latest`` when neither a tag nor a digest was given (Docker's TagNameOnly);
    a digest-only reference keeps ``tag=None``. A NamedTuple rather than a frozen dataclass:
    defining one of those costs ~0.5 ms of every ``nbdock run``.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Repository name, canonical: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Repository name as the Docker UI shows it: ``busybox``, ``user/app``, ``host:5000/x``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX) :]:
            return self.path[len(OFFICIAL_PREFIX) :]
        return self.path

    @property
    def canonical(self) -> str:
        """``docker.io/library/busybox:latest`` (the key tags are stored under)."""
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        """``busybox:latest`` — the form ``docker images`` and ``RepoTags`` show."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        if not _tag_re().match(tag):
            raise InvalidReference(f"{self.familiar_name}:{tag}", "invalid tag format")
        return self._replace(tag=tag, digest=None)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.canonical


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse a user-written reference like Docker's ``ParseNormalizedNamed`` + ``TagNameOnly``.

    Raises InvalidReference with the reason (and a hint where one helps).
    """
    if not isinstance(text, str) or text == "":
        raise InvalidReference(str(text), "repository name must have at least one component")
    if _IDENTIFIER_RE.match(text):
        raise InvalidReference(
            text,
            "cannot specify 64-byte hexadecimal strings as a repository name",
            hint=f"to name an image by id write 'sha256:{text}'",
        )
    official = _official_re().match(text)
    if official is not None and len(OFFICIAL_PREFIX) + len(official.group(1)) <= NAME_MAX:
        # Docker Hub's official images, what ``nbdock run`` is mostly given: the grammar below
        # reads them the same way (tests/unit/image/test_reference.py checks), but compiling
        # its regexps costs ~0.7 ms of every CLI start.
        tag = official.group(2) or (DEFAULT_TAG if default_tag else None)
        return Reference(domain=DEFAULT_DOMAIN, path=OFFICIAL_PREFIX + official.group(1), tag=tag)
    return _parse_grammar(text, default_tag)


def _parse_grammar(text: str, default_tag: bool) -> Reference:
    """``parse_reference`` by distribution/reference's full grammar."""
    domain, remainder = _split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference(
            text, "repository name must be lowercase", hint=_lowercase_hint(text)
        )
    match = _reference_re().match(f"{domain}/{remainder}")
    if match is None:
        raise InvalidReference(text, _why_invalid(text))
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    name_match = _name_re().match(name)
    assert name_match is not None  # the reference regexp embeds the name regexp
    parsed_domain, path = name_match.group(1), name_match.group(2)
    if len(path) > NAME_MAX:
        raise InvalidReference(text, f"repository name must not be more than {NAME_MAX} characters")
    if digest is not None:
        _validate_digest(text, digest)
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain=parsed_domain or domain, path=path, tag=tag, digest=digest)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """Split off the registry part the way ``splitDockerDomain`` does."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_PREFIX + name
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remote = first, rest
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_PREFIX + remote
    return domain, remote


def _split_suffixes(text: str) -> tuple[str, str | None, str | None]:
    """``name``, ``tag``, ``digest`` split by position only (for error messages and hints)."""
    name, at, digest = text.partition("@")
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :], digest if at else None
    return name, None, digest if at else None


def _lowercase_hint(text: str) -> str:
    name, tag, digest = _split_suffixes(text)
    suggestion = name.lower() + (f":{tag}" if tag is not None else "")
    suggestion += f"@{digest}" if digest is not None else ""
    return f"repository names must be lowercase: try {suggestion!r}"


def _why_invalid(text: str) -> str:
    name, tag, digest = _split_suffixes(text)
    if digest is not None and not _digest_re().match(digest):
        return f"invalid digest {digest!r} (expected algorithm:hex, e.g. sha256:<64 hex>)"
    if tag is not None and not _tag_re().match(tag):
        if len(tag) > TAG_MAX:
            return f"tag is {len(tag)} characters long; at most {TAG_MAX} are allowed"
        if tag == "":
            return "tag after ':' is empty"
        return (
            f"invalid tag {tag!r}: use letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'"
        )
    return (
        f"invalid repository name {name!r}: use lowercase letters, digits and separators "
        "('.', '_', '__', '-') between '/'-separated components"
    )


def _validate_digest(text: str, digest: str) -> None:
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        raise InvalidReference(text, f"unsupported digest algorithm {algorithm!r}")
    if not re.fullmatch(rf"[a-f0-9]{{{length}}}", encoded):
        raise InvalidReference(
            text, f"invalid {algorithm} digest: expected {length} lowercase hex characters"
        )
