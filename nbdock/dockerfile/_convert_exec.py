"""Converters for the instructions that hold a command: RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from nbdock.dockerfile._convert_base import Command, Context, base, heredocs, require
from nbdock.dockerfile.flags import go_duration_ns, parse_flags, parse_mount
from nbdock.dockerfile.instructions import (
    Cmd,
    Entrypoint,
    Healthcheck,
    Run,
    RunNetwork,
    RunSecurity,
    Shell,
)
from nbdock.errors import DockerfileError


def _command(cmd: Command, values: Sequence[str], example: str) -> str | tuple[str, ...]:
    """The shell-form string or the exec-form argv of RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    if cmd.json:
        return tuple(values)
    if not values or not values[0].strip():
        raise DockerfileError(f"{cmd.cmd.upper()} requires a command", hint=f"write {example}")
    return cast(str, values[0])


def convert_run(cmd: Command, ctx: Context) -> Run:
    flags = parse_flags("RUN", cmd.flags)
    command = _command(cmd, cmd.value, "RUN <command>, e.g. RUN apt-get update")
    if command == ():
        raise DockerfileError("RUN requires a command", hint='write RUN ["executable", "arg"]')
    network = cast(str, flags.get("network", "default"))
    if network not in ("default", "none", "host"):
        raise DockerfileError(
            f"invalid network mode {network!r}", hint="use --network=default, none or host"
        )
    security = cast(str, flags.get("security", "sandbox"))
    if security not in ("sandbox", "insecure"):
        raise DockerfileError(
            f"security {security!r} is not valid", hint="use --security=sandbox or insecure"
        )
    docs = heredocs(cmd, command) if isinstance(command, str) else ()
    return Run(
        **base(cmd),
        command=command,
        is_exec_form=bool(cmd.json),
        heredocs=docs,
        mounts=tuple(parse_mount(m) for m in cast(list[str], flags.get("mount", []))),
        network=cast(RunNetwork, network),
        security=cast(RunSecurity, security),
    )


def convert_cmd(cmd: Command, ctx: Context) -> Cmd:
    parse_flags("CMD", cmd.flags)
    command = _command(cmd, cmd.value, 'CMD ["executable", "arg"] (CMD [] clears it)')
    return Cmd(**base(cmd), command=command, is_exec_form=bool(cmd.json))


def convert_entrypoint(cmd: Command, ctx: Context) -> Entrypoint:
    parse_flags("ENTRYPOINT", cmd.flags)
    command = _command(cmd, cmd.value, 'ENTRYPOINT ["executable", "arg"]')
    return Entrypoint(**base(cmd), command=command, is_exec_form=bool(cmd.json))


def convert_shell(cmd: Command, ctx: Context) -> Shell:
    parse_flags("SHELL", cmd.flags)
    if not cmd.json:
        raise DockerfileError(
            "SHELL requires the arguments to be in JSON form", hint='write SHELL ["/bin/bash", "-c"]'
        )
    require(cmd, 'SHELL ["/bin/bash", "-c"]')
    return Shell(**base(cmd), shell=tuple(cmd.value))


def _duration(flags: dict[str, Any], key: str) -> int | None:
    text = flags.get(key)
    if not text:
        return None
    value = go_duration_ns(text)
    if value != 0 and value < 1_000_000:
        raise DockerfileError(
            f"--{key} cannot be less than 1ms", hint=f"write e.g. --{key}=30s"
        )
    return value


def convert_healthcheck(cmd: Command, ctx: Context) -> Healthcheck:
    flags = parse_flags("HEALTHCHECK", cmd.flags)
    require(cmd, "HEALTHCHECK CMD <command> or HEALTHCHECK NONE")
    kind = cmd.value[0].upper()
    if kind == "NONE":
        if len(cmd.value) > 1:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(**base(cmd), kind="NONE")
    if kind != "CMD":
        raise DockerfileError(
            f'Unknown type "{cmd.value[0]}" in HEALTHCHECK (try CMD)',
            hint="write HEALTHCHECK CMD <command> or HEALTHCHECK NONE",
        )
    rest = list(cmd.value[1:])
    if not rest or (not cmd.json and not rest[0].strip()):
        raise DockerfileError(
            "Missing command after HEALTHCHECK CMD", hint="write HEALTHCHECK CMD curl -f http://…"
        )
    retries = None
    if flags.get("retries"):
        try:
            retries = int(cast(str, flags["retries"]), 10)
        except ValueError:
            raise DockerfileError(
                f"invalid --retries value {flags['retries']!r}", hint="write e.g. --retries=3"
            ) from None
        if retries < 0:
            raise DockerfileError(f"--retries cannot be negative ({retries})")
    return Healthcheck(
        **base(cmd),
        kind="CMD",
        command=tuple(rest) if cmd.json else rest[0],
        is_exec_form=bool(cmd.json),
        interval=_duration(flags, "interval"),
        timeout=_duration(flags, "timeout"),
        start_period=_duration(flags, "start-period"),
        start_interval=_duration(flags, "start-interval"),
        retries=retries,
    )
