"""expand_instruction: exactly the fields Docker expands, and the variables each step reads."""

from __future__ import annotations

import pytest

from nbdock.dockerfile import DockerfileError, expand_instruction, parse_dockerfile
from tests.unit.dockerfile.cases import assert_subset, plain

ENV = {"A": "1", "DIR": "/srv", "EMPTY": "", "USER": "app", "SP": "x y"}

# (instruction line after "FROM base\n", expected fields after expansion, used, unset)
CASES = [
    ('ENV B=$A C="${A} two" $A=key', {"pairs": [["B", "1"], ["C", "1 two"], ["1", "key"]]},
     {"A"}, set()),
    ("LABEL dir=${DIR}/x missing=${NOPE:-d}", {"pairs": [["dir", "/srv/x"], ["missing", "d"]]},
     {"DIR", "NOPE"}, {"NOPE"}),
    ("ARG X=$A Y", {"args": [{"name": "X", "default": "1"}, {"name": "Y", "default": None}]},
     {"A"}, set()),
    ("WORKDIR $DIR/app", {"path": "/srv/app"}, {"DIR"}, set()),
    ("USER ${USER}:${GROUP:-$USER}", {"user": "app:app"}, {"USER", "GROUP"}, {"GROUP"}),
    ("VOLUME $DIR/data /plain", {"paths": ["/srv/data", "/plain"]}, {"DIR"}, set()),
    ('VOLUME ["$DIR"]', {"paths": ["/srv"]}, {"DIR"}, set()),
    ("STOPSIGNAL ${SIG:-SIGTERM}", {"signal": "SIGTERM"}, {"SIG"}, {"SIG"}),
    ("EXPOSE ${PORT:-80} $SP", {"ports": ["80", "x", "y"]}, {"PORT", "SP"}, {"PORT"}),
    ("COPY --chown=$USER --chmod=${MODE:-644} --from=build $DIR/a 'b'c $DIR/",
     {"sources": ["/srv/a", "bc"], "dest": "/srv/", "chown": "app", "chmod": "644",
      "from_stage": "build"}, {"USER", "MODE", "DIR"}, {"MODE"}),
    ("ADD --checksum=$SUM --chown=$USER https://x/$A.tgz /$A/",
     {"sources": ["https://x/1.tgz"], "dest": "/1/", "checksum": "", "chown": "app"},
     {"SUM", "USER", "A"}, {"SUM"}),
    ("RUN --mount=type=cache,target=$DIR/cache,id=c-$A echo $A",
     {"command": "echo $A", "mounts": [{"target": "/srv/cache", "id": "c-1"}]},
     {"DIR", "A"}, set()),
    ("CMD echo $A", {"command": "echo $A"}, set(), set()),
    ("ENTRYPOINT [\"$A\"]", {"command": ["$A"]}, set(), set()),
    ("HEALTHCHECK CMD test $A", {"command": "test $A"}, set(), set()),
    ("SHELL [\"$A\"]", {"shell": ["$A"]}, set(), set()),
    ("MAINTAINER $A", {"name": "$A"}, set(), set()),
    ("ONBUILD RUN echo $A", {"expression": "RUN echo $A"}, set(), set()),
]


@pytest.mark.parametrize(("line", "fields", "used", "unset"), CASES, ids=[c[0] for c in CASES])
def test_expand_instruction(line: str, fields: dict, used: set, unset: set) -> None:
    instr = parse_dockerfile(f"FROM base\n{line}\n").stages[0].instructions[0]
    result = expand_instruction(instr, ENV)
    assert type(result.instruction) is type(instr)
    assert_subset(fields, plain(result.instruction), line)
    assert result.used == used
    assert result.unset == unset
    assert (result.instruction.line, result.instruction.original) == (instr.line, instr.original)


def test_env_values_use_the_environment_before_the_instruction() -> None:
    instr = parse_dockerfile("FROM base\nENV A=2 B=$A\n").stages[0].instructions[0]
    assert plain(expand_instruction(instr, ENV).instruction)["pairs"] == [["A", "2"], ["B", "1"]]


def test_from_is_expanded_with_global_args() -> None:
    df = parse_dockerfile("ARG TAG=3.20\nFROM --platform=$P alpine:${TAG}\n")
    result = expand_instruction(df.stages[0].from_, {"TAG": "3.19", "P": "linux/amd64"})
    assert (result.instruction.image, result.instruction.platform) == ("alpine:3.19", "linux/amd64")
    assert result.used == {"TAG", "P"}


def test_heredoc_bodies_expand_unless_the_delimiter_is_quoted() -> None:
    df = parse_dockerfile(
        "FROM base\nCOPY <<EOF /a\nit's $A \\$A\nEOF\nCOPY <<'EOF' /b\nit's $A\nEOF\n"
        "RUN <<EOF\necho $A\nEOF\n"
    )
    copy_a, copy_b, run = df.stages[0].instructions
    assert expand_instruction(copy_a, ENV).instruction.heredocs[0].content == "it's 1 $A\n"
    assert expand_instruction(copy_b, ENV).instruction.heredocs[0].content == "it's $A\n"
    assert expand_instruction(run, ENV).instruction.heredocs[0].content == "echo $A\n"


def test_backtick_escape() -> None:
    df = parse_dockerfile("# escape=`\nFROM base\nWORKDIR C:\\dir\\`$A\n")
    instr = df.stages[0].instructions[0]
    assert expand_instruction(instr, ENV, df.escape).instruction.path == "C:\\dir\\$A"


def test_expansion_errors_name_the_line() -> None:
    instr = parse_dockerfile("FROM base\nRUN true\nWORKDIR ${NEED:?set NEED}\n").stages[0]
    with pytest.raises(DockerfileError) as info:
        expand_instruction(instr.instructions[1], {})
    assert info.value.line == 3
    assert "NEED: set NEED" in str(info.value)
    assert str(info.value).startswith("Dockerfile:3: ")
