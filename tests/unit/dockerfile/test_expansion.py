"""Word expansion: BuildKit's own tables (conformance) and nbdock's extra table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbdock.dockerfile import (
    DockerfileError,
    ShellLexer,
    expand_word,
    expand_word_tracking,
    expand_words,
)
from tests.conftest import conformance_dir
from tests.unit.dockerfile.cases import DATA

BUILDKIT_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases(path: Path) -> list[tuple[int, str, str]]:
    """``PLATFORM | input | expected`` lines, Windows-only (W) ones left out."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("#") or not line.strip():
            continue
        platform, source, expected = (part.strip() for part in line.split("|"))
        assert platform in ("A", "U", "W"), f"line {number}: bad platform {platform!r}"
        if platform != "W":
            cases.append((number, source, expected))
    return cases


def _words_cases(path: Path) -> list[tuple[int, str, dict[str, str], list[str]]]:
    """``input | w1,w2`` lines; ``ENV k=v`` lines add to the env of the cases after them."""
    cases = []
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("#") or not line:
            continue
        if line.startswith("ENV "):
            key, _, value = line[3:].lstrip(" ").partition("=")
            env = {**env, key: value}
            continue
        source, expected = line.split("|")
        cases.append((number, source.strip(), env, expected.lstrip(" ").split(",")))
    return cases


def test_buildkit_env_var_table() -> None:
    cases = _env_var_cases(conformance_dir("buildkit-shell") / "envVarTest")
    assert len(cases) > 200
    failures = []
    for number, source, expected in cases:
        try:
            got = expand_word(source, BUILDKIT_ENV)
        except DockerfileError:
            got = "error"
        if got != expected:
            failures.append(f"envVarTest:{number}: {source!r} -> {got!r}, want {expected!r}")
    assert not failures, "\n".join(failures)


def test_buildkit_words_table() -> None:
    cases = _words_cases(conformance_dir("buildkit-shell") / "wordsTest")
    assert len(cases) > 20
    failures = []
    for number, source, env, expected in cases:
        try:
            got = expand_words(source, env)
        except DockerfileError:
            got = ["error"]
        if got != expected:
            failures.append(f"wordsTest:{number}: {source!r} -> {got!r}, want {expected!r}")
    assert not failures, "\n".join(failures)


EXTRA = [
    json.loads(line)
    for line in (DATA / "expansion_cases.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


@pytest.mark.parametrize("case", EXTRA, ids=[c["word"] for c in EXTRA])
def test_expansion_table(case: dict) -> None:
    escape = case.get("escape", "\\")
    if "error" in case:
        with pytest.raises(DockerfileError) as info:
            expand_word(case["word"], case["env"], escape)
        assert case["error"] in info.value.message
        assert case["word"] in info.value.message  # the error names the word
        if "hint" in case:
            assert info.value.hint and case["hint"] in info.value.hint
        return
    result = expand_word_tracking(case["word"], case["env"], escape)
    if "value" in case:
        assert result.value == case["value"]
        assert expand_word(case["word"], case["env"], escape) == case["value"]
    if "words" in case:
        assert list(result.words) == case["words"]
        assert expand_words(case["word"], case["env"], escape) == case["words"]
    if "used" in case:
        assert result.used == frozenset(case["used"])
    if "unset" in case:
        assert result.unset == frozenset(case["unset"])


def test_lexer_options_used_for_heredoc_detection() -> None:
    raw = ShellLexer(raw_quotes=True, raw_escapes=True, skip_unset=True)
    result = raw.process("cat <<'EOF' $X ${Y:-d} a\\ b", {})
    assert list(result.words) == ["cat", "<<'EOF'", "$X", "${Y:-d}", "a\\ b"]
    body = ShellLexer(skip_quotes=True).process("it's \"$A\"", {"A": "1"})
    assert body.value == "it's \"1\""


def test_bad_escape_character() -> None:
    with pytest.raises(DockerfileError, match="invalid escape token"):
        ShellLexer("!")
