"""COPY wildcards match like Go's filepath.Match, one path component at a time."""

from __future__ import annotations

import pytest

from nbdock.build.globs import has_wildcards, match_component, unescape
from nbdock.errors import DockerfileError

# (pattern, name, matches) — cases from Go's path/filepath match_test.go semantics.
CASES = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*", ".hidden", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "ab/c", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abe", True),
    ("ab[!c]", "abd", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a/b", False),
    ("a?c", "abc", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("*.txt", "notes.txt", True),
    ("*.txt", "notes.md", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), CASES)
def test_match_component(pattern: str, name: str, expected: bool) -> None:
    assert match_component(pattern, name) is expected


@pytest.mark.parametrize("pattern", ["[", "[a-", "a\\", "[]", "[z-a]"])
def test_bad_patterns_are_reported(pattern: str) -> None:
    with pytest.raises(DockerfileError):
        match_component(pattern, "x")


def test_wildcard_detection_respects_escapes() -> None:
    assert has_wildcards("*.txt") and has_wildcards("a/b?") and has_wildcards("[ab]")
    assert not has_wildcards("plain/file.txt")
    assert not has_wildcards("a\\*b")
    assert unescape("a\\*b") == "a*b"
