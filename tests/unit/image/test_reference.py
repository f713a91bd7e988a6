"""Image references parse and normalise as Docker's distribution/reference does."""

from __future__ import annotations

import pytest

from nbdock.errors import InvalidReference
from nbdock.image.reference import Reference, parse_reference

D64 = "sha256:" + "0123456789abcdef" * 4

# text → (domain, path, tag, digest, familiar)
VALID = [
    ("busybox", ("docker.io", "library/busybox", "latest", None, "busybox:latest")),
    ("busybox:1.36", ("docker.io", "library/busybox", "1.36", None, "busybox:1.36")),
    ("docker.io/library/busybox", ("docker.io", "library/busybox", "latest", None, "busybox:latest")),
    ("docker.io/busybox", ("docker.io", "library/busybox", "latest", None, "busybox:latest")),
    ("index.docker.io/busybox:x", ("docker.io", "library/busybox", "x", None, "busybox:x")),
    ("index.docker.io/user/app", ("docker.io", "user/app", "latest", None, "user/app:latest")),
    ("user/app:v1", ("docker.io", "user/app", "v1", None, "user/app:v1")),
    ("a/b/c/d", ("docker.io", "a/b/c/d", "latest", None, "a/b/c/d:latest")),
    ("docker.io/library/a/b", ("docker.io", "library/a/b", "latest", None, "library/a/b:latest")),
    ("localhost/x", ("localhost", "x", "latest", None, "localhost/x:latest")),
    ("localhost:5000/x:t", ("localhost:5000", "x", "t", None, "localhost:5000/x:t")),
    ("example.com/foo/bar", ("example.com", "foo/bar", "latest", None, "example.com/foo/bar:latest")),
    ("127.0.0.1:5000/x", ("127.0.0.1:5000", "x", "latest", None, "127.0.0.1:5000/x:latest")),
    ("[::1]:5000/x", ("[::1]:5000", "x", "latest", None, "[::1]:5000/x:latest")),
    (f"host:5000/a/b:tag@{D64}", ("host:5000", "a/b", "tag", D64, f"host:5000/a/b:tag@{D64}")),
    (f"busybox@{D64}", ("docker.io", "library/busybox", None, D64, f"busybox@{D64}")),
    ("bb:latest", ("docker.io", "library/bb", "latest", None, "bb:latest")),
    ("busybox:LATEST", ("docker.io", "library/busybox", "LATEST", None, "busybox:LATEST")),
    ("foo_bar", ("docker.io", "library/foo_bar", "latest", None, "foo_bar:latest")),
    ("foo__bar", ("docker.io", "library/foo__bar", "latest", None, "foo__bar:latest")),
    ("foo---bar", ("docker.io", "library/foo---bar", "latest", None, "foo---bar:latest")),
    ("a.b.c", ("docker.io", "library/a.b.c", "latest", None, "a.b.c:latest")),
    # An uppercase first component is taken as a registry host, as Docker does.
    ("Foo/bar", ("Foo", "bar", "latest", None, "Foo/bar:latest")),
    ("localhost", ("docker.io", "library/localhost", "latest", None, "localhost:latest")),
    ("x:" + "t" * 128, ("docker.io", "library/x", "t" * 128, None, "x:" + "t" * 128)),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t[:40] for t, _ in VALID])
def test_valid_references_normalise_like_docker(text: str, expected: tuple) -> None:
    ref = parse_reference(text)
    domain, path, tag, digest, familiar = expected
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ref.familiar == familiar
    assert parse_reference(ref.canonical) == ref
    assert parse_reference(ref.familiar) == ref


def test_canonical_and_familiar_forms() -> None:
    ref = parse_reference("busybox")
    assert ref.canonical == "docker.io/library/busybox:latest"
    assert ref.familiar == "busybox:latest"
    assert ref.name == "docker.io/library/busybox"
    assert ref.familiar_name == "busybox"
    assert str(ref) == ref.canonical
    assert ref.with_tag("1.0").familiar == "busybox:1.0"
    assert parse_reference("busybox", default_tag=False).tag is None
    assert isinstance(ref, Reference)
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("UBUNTU", "'ubuntu'"),
        ("Busybox", "'busybox'"),
        ("UBUNTU:22.04", "'ubuntu:22.04'"),
        ("library/Ubuntu:Jammy", "'library/ubuntu:Jammy'"),
        ("myorg/MyApp", "'myorg/myapp'"),
    ],
)
def test_uppercase_repository_names_fail_with_a_lowercase_hint(text: str, suggestion: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert "lowercase" in info.value.reason
    assert info.value.hint is not None and suggestion in info.value.hint
    assert f"try {suggestion}" in str(info.value)
    assert info.value.reference == text


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        ("", "at least one component"),
        ("busybox:", "empty"),
        ("busybox:-x", "invalid tag"),
        ("busybox:.x", "invalid tag"),
        ("busybox:a b", "invalid tag"),
        ("busybox:a/b", "invalid"),
        ("x:" + "t" * 129, "128"),
        ("0123456789abcdef" * 4, "64-byte"),
        ("foo___bar", "invalid repository name"),
        ("-foo", "invalid repository name"),
        ("foo-", "invalid repository name"),
        ("foo.", "invalid repository name"),
        ("a//b", "invalid repository name"),
        ("x/", "invalid repository name"),
        ("localhost:abc/x", "invalid"),
        ("busybox@sha256:abc", "invalid digest"),
        ("busybox@sha256:" + "A" * 64, "lowercase hex"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("busybox@sha256:" + "a" * 63, "64"),
        ("a/" + "b" * 260, "255"),
        ("busy box", "invalid"),
    ],
)
def test_invalid_references_name_the_reason(text: str, reason_part: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert reason_part in info.value.reason


def test_with_tag_validates() -> None:
    with pytest.raises(InvalidReference):
        parse_reference("busybox").with_tag("bad tag")


def _outcome(parse, text: str, default_tag: bool) -> object:  # noqa: ANN001
    try:
        return parse(text, default_tag)
    except InvalidReference as error:
        return ("error", error.reason, error.hint)


@pytest.mark.parametrize("default_tag", [True, False])
def test_the_official_image_shortcut_reads_like_the_full_grammar(default_tag: bool) -> None:
    """``busybox``-like references skip the full grammar's regexps (a CLI start saves their
    compilation): the answer, or the error, must be the same either way."""
    from nbdock.image.reference import _parse_grammar

    texts = [text for text, _ in VALID] + [
        "a", "0", "a-b", "a--b", "a_b", "a__b", "a___b", "a.b", "a..b", "_a", "a_", "a:b",
        "a:B_1.x-y", "a:", "a:_", "a:.", "a:-", "a::b", "a:b:c", "a@b", "A", "aB", "a b", "a\n",
        "x" * 247, "x" * 248, "x" * 300, "x:" + "t" * 128, "x:" + "t" * 129, "é", "a:é",
        "python:3.12-slim", "debian:bookworm", "busybox:latest",
    ]

    def shortcut_or_grammar(text: str, tag: bool) -> Reference:
        return parse_reference(text, default_tag=tag)

    for text in texts:
        assert _outcome(shortcut_or_grammar, text, default_tag) == _outcome(
            _parse_grammar, text, default_tag
        ), text
