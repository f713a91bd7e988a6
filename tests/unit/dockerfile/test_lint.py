"""Lint rules against the table in data/lint_cases.txt, plus the warning's shape."""

from __future__ import annotations

import pytest

from nbdock.dockerfile import lint_dockerfile, parse_check_directive, parse_dockerfile
from tests.unit.dockerfile.cases import load, read_cases

CASES = read_cases("lint_cases.txt")


@pytest.mark.parametrize("case", CASES, ids=[c.title for c in CASES])
def test_lint_case(case) -> None:
    image_env = next((load(p) for k, p in case.expectations if k == "image_env"), None)
    expected = [load(p) for k, p in case.expectations if k == "warn"]
    warnings = lint_dockerfile(parse_dockerfile(case.text), image_env=image_env)
    got = sorted((w.rule, w.line) for w in warnings)
    assert got == sorted((e["rule"], e["line"]) for e in expected), "\n".join(map(str, warnings))
    for exp in expected:
        match = [w for w in warnings if (w.rule, w.line) == (exp["rule"], exp["line"])]
        assert any(exp.get("message", "") in w.message for w in match), match
        assert any(exp.get("hint", "") in (w.hint or "") for w in match), match
        assert all(w.hint for w in match), "every warning says how to fix it"


def test_every_rule_has_a_case() -> None:
    rules = {load(p)["rule"] for c in CASES for k, p in c.expectations if k == "warn"}
    assert rules >= {
        "JSONArgsRecommended", "FromAsCasing", "UndefinedVar", "UndefinedArgInFrom",
        "StageNameCasing", "DuplicateStageName", "ReservedStageName", "MaintainerDeprecated",
        "WorkdirRelativePath", "MultipleInstructionsDisallowed", "ConsistentInstructionCasing",
        "LegacyKeyValueFormat", "AptGetInstallWithoutYes", "InvalidExpansion",
    }  # fmt: skip


def test_warning_shape_and_docs_url() -> None:
    [warning] = lint_dockerfile(parse_dockerfile("FROM alpine\nCMD python app.py\n"))
    assert str(warning) == (
        "Dockerfile:2: [JSONArgsRecommended] JSON arguments recommended for CMD to prevent "
        'unintended behavior related to OS signals — write CMD ["python", "app.py"]'
    )
    assert warning.url == "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
    [apt] = lint_dockerfile(parse_dockerfile('FROM debian\nRUN ["apt-get", "install", "x"]\n'))
    assert apt.url is None  # nbdock's own rule


def test_parse_check_directive() -> None:
    assert parse_check_directive("skip=A,B;error=true") == (frozenset({"A", "B"}), True)
    assert parse_check_directive("") == (frozenset(), False)
    assert parse_check_directive("error=false") == (frozenset(), False)
