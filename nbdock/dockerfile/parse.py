"""``parse_dockerfile``: text → ``Dockerfile`` (stages of typed instructions), or a located error.

Three layers, as in BuildKit: BuildKit's own parser (the ``dockerfile`` package) splits the text
into instructions; ``_convert`` types each one and checks its flags and arguments; this module
groups them into stages, collects the ARGs before the first FROM and records the directives.
Any error names the line and says how to fix it.
"""

from __future__ import annotations

import dockerfile

from nbdock.dockerfile._convert import Context, convert
from nbdock.dockerfile.instructions import Arg, Dockerfile, From, Instruction, Stage
from nbdock.dockerfile.source import logical_spans, parse_directives, split_lines
from nbdock.errors import DockerfileError

_PARSER_HINTS = {
    "ENV must have two arguments": "write ENV NAME=value",
    "LABEL must have two arguments": 'write LABEL key="value"',
    "Syntax error - can't find =": 'every word must be NAME=value; quote spaces: NAME="a b"',
    "when using JSON array syntax": 'every element of the JSON array must be a "string"',
    "unterminated heredoc": "end the heredoc with a line holding only its delimiter (e.g. EOF)",
}


def excerpt(text: str, max_lines: int = 3) -> str:
    """The first lines of an instruction, for error messages."""
    lines = text.strip("\n").splitlines()
    shown = "\n".join(lines[:max_lines])
    return shown + ("\n…" if len(lines) > max_lines else "")


def parse_dockerfile(text: str) -> Dockerfile:
    """Parse a Dockerfile. Raises ``DockerfileError`` (with line and hint) when it is invalid."""
    directives = parse_directives(text)
    escape = next((d.value for d in directives if d.name == "escape"), "\\")
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise _locate(text, escape, str(exc)) from None
    ctx = Context(escape, split_lines(text))
    instructions: list[Instruction] = []
    for cmd in commands:
        try:
            instructions.append(convert(cmd, ctx))
        except DockerfileError as exc:
            raise exc.at(cmd.start_line, excerpt(cmd.original or "")) from None
    stages, global_args = _group(instructions)
    return Dockerfile(
        stages=stages,
        global_args=global_args,
        directives={d.name: d.value for d in directives},
        escape=escape,
    )


def _locate(text: str, escape: str, message: str) -> DockerfileError:
    """Find the instruction behind a parser error by parsing each instruction alone."""
    if message == "file with no instructions":
        return DockerfileError(
            "the Dockerfile has no instructions",
            hint="start with FROM <image>, e.g. FROM alpine:3.20",
        )
    hint = next((h for prefix, h in _PARSER_HINTS.items() if message.startswith(prefix)), None)
    header = "# escape=`\n" if escape == "`" else ""
    lines = split_lines(text)
    for start, end in logical_spans(text, escape):
        chunk = "".join(lines[start - 1 : end])
        try:
            dockerfile.parse_string(header + chunk)
        except dockerfile.GoParseError as exc:
            return DockerfileError(str(exc), line=start, hint=hint, instruction=excerpt(chunk))
    return DockerfileError(message, hint=hint)


def _group(instructions: list[Instruction]) -> tuple[tuple[Stage, ...], tuple[Arg, ...]]:
    """Split the instruction list at each FROM; only ARG may come before the first one."""
    global_args: list[Arg] = []
    stages: list[Stage] = []
    current: From | None = None
    body: list[Instruction] = []

    def close() -> None:
        if current is not None:
            stages.append(
                Stage(
                    index=len(stages),
                    name=current.stage_name,
                    base=current.image,
                    platform=current.platform,
                    line=current.line,
                    from_=current,
                    instructions=tuple(body),
                )
            )

    for instr in instructions:
        if isinstance(instr, From):
            close()
            current, body = instr, []
        elif current is None:
            if not isinstance(instr, Arg):
                raise DockerfileError(
                    f"{instr.NAME} cannot come before the first FROM",
                    line=instr.line,
                    hint="a Dockerfile starts with FROM <image>; only ARG may come before it",
                    instruction=excerpt(instr.original),
                )
            global_args.append(instr)
        else:
            body.append(instr)
    close()
    if not stages:
        raise DockerfileError(
            "the Dockerfile has no FROM instruction",
            hint="start a stage with FROM <image>, e.g. FROM alpine:3.20",
        )
    return tuple(stages), tuple(global_args)
