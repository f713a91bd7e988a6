""".dockerignore with Docker's semantics: tables in data/dockerignore_*.jsonl plus file parsing."""

from __future__ import annotations

import json

import pytest

from nbdock.dockerfile import DockerfileError, DockerIgnore
from nbdock.dockerfile.dockerignore import go_clean
from tests.unit.dockerfile.cases import DATA


def _table(name: str) -> list[dict]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


MATCHES = _table("dockerignore_matches.jsonl")
SKIPS = _table("dockerignore_skipdir.jsonl")


@pytest.mark.parametrize("case", MATCHES, ids=[f"{c['patterns']}~{c['path']}" for c in MATCHES])
def test_matches(case: dict) -> None:
    from_file = DockerIgnore.from_text("\n".join(case["patterns"]) + "\n")
    assert from_file.matches(case["path"]) is case["match"], case.get("note", "")
    if not case.get("file_only"):
        # The same patterns given one by one (COPY --exclude) give the same verdict.
        ignore = DockerIgnore.from_patterns(case["patterns"])
        assert ignore.matches(case["path"]) is case["match"], case.get("note", "")


@pytest.mark.parametrize("case", SKIPS, ids=[f"{c['patterns']}~{c['dir']}" for c in SKIPS])
def test_can_skip_dir(case: dict) -> None:
    ignore = DockerIgnore.from_patterns(case["patterns"])
    assert ignore.can_skip_dir(case["dir"]) is case["skip"], case.get("note", "")


def test_can_skip_dir_never_hides_a_reincluded_file() -> None:
    """Whatever can_skip_dir allows to skip, nothing below it may be included."""
    files = ["a/b/c", "a/b/d", "a/x/y", "keep/me", "keep/not", "n/keep/z", "deep/a/b/c.keep"]
    pattern_sets = [c["patterns"] for c in SKIPS] + [["a", "!a/b/d"], ["*", "!keep/me"]]
    for patterns in pattern_sets:
        ignore = DockerIgnore.from_patterns(patterns)
        for path in files:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if ignore.can_skip_dir(directory):
                    assert ignore.matches(path), f"{patterns}: skipping {directory} hides {path}"


def test_file_syntax() -> None:
    text = (
        "\ufeff# a comment\n"
        "  # not a comment: leading space makes it a pattern\n"
        "\n"
        "   *.pyc   \r\n"
        "/build\n"
        "./dist/\n"
        "! keep.pyc\n"
        "docs/../notes\n"
    )
    ignore = DockerIgnore.from_text(text)
    assert [(p.text, p.exclusion, p.line) for p in ignore.patterns] == [
        ("# not a comment: leading space makes it a pattern", False, 2),
        ("*.pyc", False, 4),
        ("build", False, 5),
        ("dist", False, 6),
        ("keep.pyc", True, 7),
        ("notes", False, 8),
    ]
    assert ignore.matches("x.pyc") and not ignore.matches("keep.pyc")
    assert ignore.matches("build/a") and ignore.matches("dist/b") and ignore.matches("notes")
    assert ignore.has_exclusions
    assert not DockerIgnore.from_text("# only a comment\n")


def test_bad_patterns_name_the_line() -> None:
    for text, line in (("ok\n[\n", 2), ("a\nb\n\\\n", 3), ("[]a]\n", 1), ("[a-b-c]\n", 1)):
        with pytest.raises(DockerfileError) as info:
            DockerIgnore.from_text(text)
        assert info.value.line == line
        assert str(info.value).startswith(f".dockerignore:{line}: ")
        assert info.value.hint


def test_lone_exclamation_is_an_error() -> None:
    with pytest.raises(DockerfileError, match='illegal exclusion pattern: "!"'):
        DockerIgnore.from_text("!\n")


@pytest.mark.parametrize(
    ("path", "clean"),
    [("", "."), ("a//b/./c/", "a/b/c"), ("../a/../../b", "../../b"), ("/../x", "/x"), ("./", ".")],
)
def test_go_clean(path: str, clean: str) -> None:
    assert go_clean(path) == clean
