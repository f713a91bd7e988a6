"""parse_dockerfile against the table in data/parse_cases.txt, plus encodings and model helpers."""

from __future__ import annotations

import pytest

from nbdock.dockerfile import (
    INSTRUCTION_NAMES,
    Dockerfile,
    DockerfileError,
    Run,
    parse_dockerfile,
)
from nbdock.dockerfile import instructions as model
from tests.unit.dockerfile.cases import assert_subset, load, plain, read_cases

CASES = read_cases("parse_cases.txt")


def test_the_table_covers_every_instruction() -> None:
    seen = {payload.split()[1] for c in CASES for kind, payload in c.expectations if kind == "expect"}
    classes = {cls.__name__ for cls in model.INSTRUCTION_CLASSES}
    assert classes <= seen, f"no parse case for {sorted(classes - seen)}"


@pytest.mark.parametrize("case", CASES, ids=[c.title for c in CASES])
def test_parse_case(case) -> None:
    errors = [load(p) for kind, p in case.expectations if kind == "error"]
    if errors:
        with pytest.raises(DockerfileError) as info:
            parse_dockerfile(case.text)
        err = info.value
        expected = errors[0]
        if "line" in expected:
            assert err.line == expected["line"], str(err)
            if err.line is not None:
                assert str(err).startswith(f"Dockerfile:{err.line}: "), str(err)
        assert expected["message"] in err.message, str(err)
        if "hint" in expected:
            assert err.hint and expected["hint"] in err.hint, str(err)
            assert expected["hint"] in str(err)
        if "instruction" in expected:
            assert err.instruction and expected["instruction"] in err.instruction, str(err)
        return
    df = parse_dockerfile(case.text)
    flat = list(df.instructions())
    for kind, payload in case.expectations:
        if kind == "expect":
            index, cls_name, fields = payload.split(" ", 2)
            instr = flat[int(index)]
            assert type(instr).__name__ == cls_name, f"{case.title}: {instr!r}"
            assert_subset(load(fields), plain(instr), f"{case.title}[{index}]")
        elif kind == "stages":
            got = [[s.name, s.base, s.index, s.line, len(s.instructions)] for s in df.stages]
            assert got == load(payload)
        elif kind == "globals":
            assert [n for a in df.global_args for n in a.names] == load(payload)
        elif kind == "directives":
            assert df.directives == load(payload)
            assert df.escape == load(payload).get("escape", "\\")
        else:
            raise AssertionError(f"unknown expectation {kind!r}")


def test_bom_and_crlf() -> None:
    df = parse_dockerfile("\ufeffFROM a\r\nRUN echo crlf\r\nENV A=1\r\n")
    run = df.stages[0].instructions[0]
    assert isinstance(run, Run)
    assert (run.line, run.command) == (2, "echo crlf")


def test_line_numbers_after_directive_bom() -> None:
    df = parse_dockerfile("\ufeff# syntax=x\nFROM a\n")
    assert df.directives == {"syntax": "x"}
    assert df.stages[0].line == 2


def test_stage_lookup_by_name_and_index() -> None:
    df = parse_dockerfile("FROM a AS Build\nFROM b AS test\nFROM c\n")
    assert df.stage("build").index == 0
    assert df.stage("BUILD").index == 0
    assert df.stage(2).base == "c"
    assert df.stage("1").name == "test"
    with pytest.raises(DockerfileError, match="unknown stage 'biuld'") as info:
        df.stage("biuld")
    assert info.value.hint == 'did you mean "build"?'
    with pytest.raises(DockerfileError, match="out of range"):
        df.stage(3)


def test_later_duplicate_stage_name_shadows() -> None:
    df = parse_dockerfile("FROM a AS x\nFROM b AS x\n")
    assert df.stage("x").base == "b"


def test_healthcheck_test_property() -> None:
    df = parse_dockerfile(
        'FROM a\nHEALTHCHECK CMD curl -f x\nHEALTHCHECK CMD ["/c", "1"]\nHEALTHCHECK NONE\n'
    )
    tests = [i.test for i in df.stages[0].instructions]  # type: ignore[union-attr]
    assert tests == [("CMD-SHELL", "curl -f x"), ("CMD", "/c", "1"), ("NONE",)]


def test_instruction_names_and_docstrings() -> None:
    assert INSTRUCTION_NAMES == (
        "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL", "EXPOSE",
        "VOLUME", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD",
        "MAINTAINER",
    )  # fmt: skip
    for cls in model.INSTRUCTION_CLASSES:
        assert cls.NAME in (cls.__doc__ or ""), f"{cls.__name__} must document its syntax"


def test_model_is_frozen_and_hashable() -> None:
    df = parse_dockerfile("FROM a\nRUN --mount=type=cache,target=/c make\nCOPY a b\n")
    run = df.stages[0].instructions[0]
    with pytest.raises(AttributeError):
        run.line = 3  # type: ignore[misc]
    assert len({run, df.stages[0].instructions[1]}) == 2
    assert isinstance(df, Dockerfile)


def test_error_message_shape() -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile("FROM a\nRUNN echo hi\n")
    assert str(info.value).splitlines()[0] == (
        'Dockerfile:2: unknown instruction "RUNN" — did you mean "RUN"?'
    )
    assert str(info.value).splitlines()[1].strip() == "RUNN echo hi"


def test_error_excerpt_is_short_for_long_heredocs() -> None:
    body = "".join(f"echo {i}\n" for i in range(20))
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(f"FROM a\nRUN --bogus <<EOF\n{body}EOF\n")
    assert info.value.instruction is not None
    assert info.value.instruction.count("\n") <= 3


def test_logical_spans_agree_with_buildkit_parser() -> None:
    """The error locator's instruction boundaries are the parser's, on every valid case."""
    import dockerfile

    from nbdock.dockerfile.source import logical_spans, parse_directives

    checked = 0
    for case in CASES:
        try:
            commands = dockerfile.parse_string(case.text)
        except dockerfile.GoParseError:
            continue
        escape = next((d.value for d in parse_directives(case.text) if d.name == "escape"), "\\")
        expected = [(c.start_line, c.end_line) for c in commands]
        assert logical_spans(case.text, escape) == expected, case.title
        checked += 1
    assert checked > 40
