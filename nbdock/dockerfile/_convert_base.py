"""Shared pieces of the instruction converters: the command's origin and argument checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from nbdock.dockerfile.instructions import Heredoc
from nbdock.dockerfile.source import chomp, heredoc_markers
from nbdock.errors import DockerfileError

Command = Any  # dockerfile.Command: a namedtuple from the compiled parser, without type stubs


class Context:
    """What a converter may need beyond the command: the escape character and the source."""

    def __init__(self, escape: str, lines: Sequence[str]) -> None:
        self.escape = escape
        self.lines = lines


def base(cmd: Command) -> dict[str, Any]:
    return {
        "line": cmd.start_line,
        "end_line": cmd.end_line,
        "original": cmd.original,
        "keyword": cmd.cmd,
    }


def require(cmd: Command, example: str) -> None:
    if not cmd.value:
        raise DockerfileError(
            f"{cmd.cmd.upper()} requires at least one argument", hint=f"write {example}"
        )


def exactly_one(cmd: Command, example: str) -> str:
    if len(cmd.value) != 1 or not cmd.value[0].strip():
        raise DockerfileError(
            f"{cmd.cmd.upper()} requires exactly one argument", hint=f"write {example}"
        )
    return cast(str, cmd.value[0])


def heredocs(cmd: Command, line: str) -> tuple[Heredoc, ...]:
    """Pair the parser's heredoc bodies with the markers' ``<<-`` and quoting details."""
    markers = {m.name: m for m in heredoc_markers(line)}
    docs = []
    for doc in cmd.heredocs:
        marker = markers.get(doc.name)
        strip = marker.chomp if marker else False
        docs.append(
            Heredoc(
                name=doc.name,
                content=chomp(doc.content) if strip else doc.content,
                fd=doc.file_descriptor,
                expand=marker.expand if marker else True,
                chomp=strip,
            )
        )
    return tuple(docs)
