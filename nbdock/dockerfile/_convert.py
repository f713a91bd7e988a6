"""BuildKit parser nodes → typed instructions: one small converter per instruction.

Each converter receives the ``dockerfile.Command`` (cmd, flags, value, json, heredocs, lines)
and returns a frozen instruction, raising ``DockerfileError`` (without a line: the caller adds
it) with the same conditions and wording as BuildKit's ``instructions/parse.go``, plus a hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import cast

import dockerfile

from nbdock.dockerfile._convert_base import (
    Command,
    Context,
    base,
    exactly_one,
    heredocs,
    require,
)
from nbdock.dockerfile._convert_exec import (
    convert_cmd,
    convert_entrypoint,
    convert_healthcheck,
    convert_run,
    convert_shell,
)
from nbdock.dockerfile._suggest import did_you_mean
from nbdock.dockerfile.expansion import expand_word
from nbdock.dockerfile.flags import parse_flags
from nbdock.dockerfile.instructions import (
    INSTRUCTION_NAMES,
    Add,
    Arg,
    ArgDef,
    Copy,
    Env,
    Expose,
    From,
    Heredoc,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from nbdock.dockerfile.source import parse_heredoc_marker
from nbdock.errors import DockerfileError

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*\Z")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)


def convert_from(cmd: Command, ctx: Context) -> From:
    flags = parse_flags("FROM", cmd.flags)
    args = cmd.value
    name = as_keyword = written = None
    if len(args) == 3 and args[1].lower() == "as":
        as_keyword, written = args[1], args[2]
        name = written.lower()
        if not _STAGE_NAME.match(name):
            raise DockerfileError(
                f"invalid name for build stage: {written!r}, name can't start with a number or "
                "contain symbols",
                hint="use lowercase letters, digits, '-', '_' and '.', starting with a letter",
            )
    elif len(args) != 1:
        raise DockerfileError(
            "FROM requires either one or three arguments",
            hint="write FROM <image> [AS <name>], e.g. FROM python:3.12-slim AS build",
        )
    return From(
        **base(cmd),
        image=args[0],
        stage_name=name,
        platform=cast("str | None", flags.get("platform")),
        as_keyword=as_keyword,
        stage_name_as_written=written,
    )


def _sources_and_dest(cmd: Command) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    name = cmd.cmd.upper()
    args = list(cmd.value)
    if len(args) < 2:
        given = "only one was provided" if args else "none were provided"
        raise DockerfileError(
            f"{name} requires at least two arguments, but {given}. "
            "Destination could not be determined",
            hint=f"write {name} <source>... <destination>, e.g. {name} app.py /app/",
        )
    dest = args[-1]
    if not cmd.json and parse_heredoc_marker(dest) is not None:
        raise DockerfileError(
            f"{name} cannot accept a heredoc as a destination",
            hint=f"write {name} <<EOF <destination>",
        )
    bodies = {doc.name: doc for doc in heredocs(cmd, " ".join(args))}
    paths: list[str] = []
    inline: list[Heredoc] = []
    for src in args[:-1]:
        marker = None if cmd.json else parse_heredoc_marker(src)
        if marker is None:
            paths.append(src)
        else:
            inline.append(bodies.get(marker.name, Heredoc(marker.name, "", marker.fd)))
    return tuple(paths), dest, tuple(inline)


def convert_copy(cmd: Command, ctx: Context) -> Copy:
    flags = parse_flags("COPY", cmd.flags)
    sources, dest, inline = _sources_and_dest(cmd)
    from_stage = cast("str | None", flags.get("from"))
    if from_stage is not None and expand_word(from_stage, {}, ctx.escape) != from_stage:
        raise DockerfileError(
            "variable expansion is not supported for --from",
            hint="define a stage from a global ARG (ARG SRC=…, FROM ${SRC} AS src) and use "
            "COPY --from=src",
        )
    return Copy(
        **base(cmd),
        sources=sources,
        dest=dest,
        heredocs=inline,
        from_stage=from_stage,
        chown=cast("str | None", flags.get("chown")),
        chmod=cast("str | None", flags.get("chmod")),
        link=bool(flags.get("link", False)),
        parents=bool(flags.get("parents", False)),
        exclude=tuple(cast(list[str], flags.get("exclude", []))),
        is_exec_form=bool(cmd.json),
    )


def convert_add(cmd: Command, ctx: Context) -> Add:
    flags = parse_flags("ADD", cmd.flags)
    sources, dest, inline = _sources_and_dest(cmd)
    return Add(
        **base(cmd),
        sources=sources,
        dest=dest,
        heredocs=inline,
        chown=cast("str | None", flags.get("chown")),
        chmod=cast("str | None", flags.get("chmod")),
        link=bool(flags.get("link", False)),
        checksum=cast("str | None", flags.get("checksum")),
        keep_git_dir=cast("bool | None", flags.get("keep-git-dir")),
        unpack=cast("bool | None", flags.get("unpack")),
        exclude=tuple(cast(list[str], flags.get("exclude", []))),
        is_exec_form=bool(cmd.json),
    )


def _first_word_has_equals(original: str) -> bool:
    """Whether ``KEY=value`` (modern) rather than ``KEY value`` (legacy) form is used."""
    rest = re.split(r"\s+", original.strip(), maxsplit=1)
    text = rest[1] if len(rest) > 1 else ""
    quote = ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            return False
        elif ch == "=":
            return True
    return False


def _pairs(cmd: Command, example: str) -> tuple[tuple[str, str], ...]:
    parse_flags(cmd.cmd.upper(), cmd.flags)
    require(cmd, example)
    values = list(cmd.value)
    pairs = tuple(zip(values[::2], values[1::2], strict=True))
    if any(not key for key, _ in pairs):
        raise DockerfileError(f"{cmd.cmd.upper()} names can not be blank", hint=f"write {example}")
    return pairs


def convert_env(cmd: Command, ctx: Context) -> Env:
    pairs = _pairs(cmd, "ENV NAME=value")
    return Env(**base(cmd), pairs=pairs, legacy=not _first_word_has_equals(cmd.original))


def convert_label(cmd: Command, ctx: Context) -> Label:
    pairs = _pairs(cmd, 'LABEL key="value"')
    return Label(**base(cmd), pairs=pairs, legacy=not _first_word_has_equals(cmd.original))


def convert_arg(cmd: Command, ctx: Context) -> Arg:
    parse_flags("ARG", cmd.flags)
    require(cmd, "ARG NAME or ARG NAME=default")
    defs = []
    for word in cmd.value:
        name, has_default, default = word.partition("=")
        if not name:
            raise DockerfileError("ARG names can not be blank", hint="write ARG NAME=default")
        defs.append(ArgDef(name, default if has_default else None))
    return Arg(**base(cmd), args=tuple(defs))


def convert_workdir(cmd: Command, ctx: Context) -> Workdir:
    parse_flags("WORKDIR", cmd.flags)
    return Workdir(**base(cmd), path=exactly_one(cmd, "WORKDIR /app"))


def convert_user(cmd: Command, ctx: Context) -> User:
    parse_flags("USER", cmd.flags)
    return User(**base(cmd), user=exactly_one(cmd, "USER <name or uid>[:<group>]"))


def convert_stopsignal(cmd: Command, ctx: Context) -> Stopsignal:
    parse_flags("STOPSIGNAL", cmd.flags)
    return Stopsignal(**base(cmd), signal=exactly_one(cmd, "STOPSIGNAL SIGTERM"))


def convert_maintainer(cmd: Command, ctx: Context) -> Maintainer:
    parse_flags("MAINTAINER", cmd.flags)
    return Maintainer(**base(cmd), name=exactly_one(cmd, "MAINTAINER <name>"))


def convert_expose(cmd: Command, ctx: Context) -> Expose:
    parse_flags("EXPOSE", cmd.flags)
    require(cmd, "EXPOSE 8080 or EXPOSE 53/udp")
    return Expose(**base(cmd), ports=tuple(cmd.value))


def convert_volume(cmd: Command, ctx: Context) -> Volume:
    parse_flags("VOLUME", cmd.flags)
    require(cmd, "VOLUME /data")
    paths = tuple(v.strip() for v in cmd.value)
    if any(not p for p in paths):
        raise DockerfileError("VOLUME specified can not be an empty string")
    return Volume(**base(cmd), paths=paths, is_exec_form=bool(cmd.json))


def convert_onbuild(cmd: Command, ctx: Context) -> Onbuild:
    parse_flags("ONBUILD", cmd.flags)
    trigger = (cmd.sub_cmd or "").upper()
    if not trigger:
        raise DockerfileError(
            "ONBUILD requires at least one argument", hint="write ONBUILD <instruction>"
        )
    if trigger == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("FROM", "MAINTAINER"):
        raise DockerfileError(f"{trigger} isn't allowed as an ONBUILD trigger")
    # The parser drops the trigger's flags and heredocs: parse the trigger's own text again.
    inner_cmd = _reparse_trigger(cmd, ctx)
    inner = convert(inner_cmd, ctx)
    inner = replace(inner, line=cmd.start_line, end_line=cmd.end_line)
    return Onbuild(**base(cmd), instruction=inner, expression=inner_cmd.original.rstrip("\n"))


def _reparse_trigger(cmd: Command, ctx: Context) -> Command:
    """The ONBUILD's source lines without the ONBUILD keyword, through the parser again."""
    lines = list(ctx.lines[cmd.start_line - 1 : cmd.end_line])
    # Blank, comment and bare-continuation lines may precede the keyword's line.
    while lines and (lines[0].strip() in ("", ctx.escape) or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    text = _ONBUILD_PREFIX.sub("", "".join(lines), 1)
    header = "# escape=`\n" if ctx.escape == "`" else ""
    try:
        inner = dockerfile.parse_string(header + text)
        if (inner[0].cmd or "").upper() == "ONBUILD":  # the keyword was not where expected
            inner = dockerfile.parse_string(_ONBUILD_PREFIX.sub("", cmd.original, 1))
    except dockerfile.GoParseError as exc:
        raise DockerfileError(str(exc)) from None
    return inner[0]


CONVERTERS: dict[str, Callable[[Command, Context], Instruction]] = {
    "FROM": convert_from,
    "RUN": convert_run,
    "COPY": convert_copy,
    "ADD": convert_add,
    "ENV": convert_env,
    "ARG": convert_arg,
    "WORKDIR": convert_workdir,
    "USER": convert_user,
    "LABEL": convert_label,
    "EXPOSE": convert_expose,
    "VOLUME": convert_volume,
    "CMD": convert_cmd,
    "ENTRYPOINT": convert_entrypoint,
    "SHELL": convert_shell,
    "HEALTHCHECK": convert_healthcheck,
    "STOPSIGNAL": convert_stopsignal,
    "ONBUILD": convert_onbuild,
    "MAINTAINER": convert_maintainer,
}


def convert(cmd: Command, ctx: Context) -> Instruction:
    """Dispatch on the instruction name (case-insensitive, as Docker is)."""
    if not cmd.cmd:
        raise DockerfileError(
            "empty instruction: a line continuation at the end of the file has nothing to continue",
            hint=f"remove the trailing {ctx.escape}",
        )
    converter = CONVERTERS.get(cmd.cmd.upper())
    if converter is None:
        text = cmd.original.strip().splitlines()[0] if cmd.original.strip() else cmd.cmd
        hint = did_you_mean(cmd.cmd.upper(), INSTRUCTION_NAMES) or (
            f"a line starts with an instruction ({', '.join(INSTRUCTION_NAMES[:4])}, …); "
            f'to run a shell command write "RUN {text}"'
        )
        raise DockerfileError(f'unknown instruction "{cmd.cmd}"', hint=hint)
    return converter(cmd, ctx)
