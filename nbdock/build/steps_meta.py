"""The instructions that change the image config (and WORKDIR, which may also add a directory).

Each ``plan_*`` takes the instruction already expanded (``Expanded``) and returns a
``PlannedStep`` whose ``apply`` makes exactly the change BuildKit makes to the image config
(``dispatchEnv``, ``dispatchCmd``, … in its dockerfile2llb), and whose ``created_by`` is the
history line. Only WORKDIR has an ``execute``: it creates the directory when the image lacks it.
"""

from __future__ import annotations

import json
import posixpath
import signal
from collections.abc import Callable
from typing import Any

from nbdock.build.cache import StepInputs
from nbdock.build.session import PlannedStep, Session
from nbdock.build.state import StageState
from nbdock.build.users import resolve_owner
from nbdock.build.writelayer import parent_entries, write_layer
from nbdock.dockerfile import (
    Cmd,
    Entrypoint,
    Env,
    Expanded,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from nbdock.errors import BuildError, DockerfileError
from nbdock.image.records import LayerRecord


def quoted(args: list[str]) -> str:
    """Go's ``%q`` of a string slice, as BuildKit writes CMD/ENTRYPOINT history lines."""
    return "[" + " ".join(json.dumps(a, ensure_ascii=False) for a in args) + "]"


def used_args(session: Session, state: StageState, expanded: Expanded) -> dict[str, str]:
    """The stage's build args this instruction's expansion read (a changed one is a miss)."""
    declared = {name for name, value in state.stage_args if value is not None}
    names = expanded.used & declared
    session.used_build_args |= names
    return {name: state.build_env.get(name, "") for name in sorted(names)}


def _inputs(session: Session, state: StageState, original: Instruction, expanded: Expanded,
            text: str) -> StepInputs:
    return StepInputs(original=original.original.strip(), text=text,
                      args=used_args(session, state, expanded))


def _meta(session: Session, state: StageState, instr: Instruction, expanded: Expanded,
          text: str, apply: Callable[[StageState], None], created_by: str | None = None
          ) -> PlannedStep:
    return PlannedStep(_inputs(session, state, instr, expanded, text), created_by or text, apply)


def plan_env(session: Session, state: StageState, instr: Env, expanded: Expanded) -> PlannedStep:
    pairs = expanded.instruction.pairs  # type: ignore[union-attr]
    text = "ENV " + " ".join(f"{k}={v}" for k, v in pairs)

    def apply(st: StageState) -> None:
        for name, value in pairs:
            st.set_env(name, value)

    return _meta(session, state, instr, expanded, text, apply)


def plan_label(session: Session, state: StageState, instr: Label, expanded: Expanded) -> PlannedStep:
    pairs = expanded.instruction.pairs  # type: ignore[union-attr]
    text = "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)

    def apply(st: StageState) -> None:
        labels = dict(st.runtime.get("Labels") or {})
        labels.update(dict(pairs))
        st.runtime["Labels"] = labels

    return _meta(session, state, instr, expanded, text, apply)


def _port(spec: str, line: int) -> list[str]:
    """``80``, ``80/udp``, ``8000-8002`` → Docker's ``"80/tcp"`` keys (ranges expanded)."""
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise DockerfileError(f"invalid protocol {proto!r} in EXPOSE {spec}", line=line,
                              hint="use tcp, udp or sctp, e.g. EXPOSE 53/udp")
    first, _, last = port.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise DockerfileError(f"invalid port {spec!r}", line=line,
                              hint="EXPOSE takes container ports: EXPOSE 80 443/tcp 8000-8002")
    low, high = int(first), int(last or first)
    if high < low or high > 65535:
        raise DockerfileError(f"invalid port range {spec!r}", line=line)
    return [f"{p}/{proto}" for p in range(low, high + 1)]


def plan_expose(session: Session, state: StageState, instr: Expose, expanded: Expanded) -> PlannedStep:
    ports = [p for spec in expanded.instruction.ports for p in _port(spec, instr.line)]  # type: ignore[union-attr]
    text = "EXPOSE " + " ".join(ports)

    def apply(st: StageState) -> None:
        exposed = dict(st.runtime.get("ExposedPorts") or {})
        exposed.update({p: {} for p in ports})
        st.runtime["ExposedPorts"] = exposed

    return _meta(session, state, instr, expanded, text, apply,
                 "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in sorted(ports)) + "]")


def plan_volume(session: Session, state: StageState, instr: Volume, expanded: Expanded) -> PlannedStep:
    paths = list(expanded.instruction.paths)  # type: ignore[union-attr]
    if any(not p for p in paths):
        raise DockerfileError("VOLUME specified can not be an empty string", line=instr.line)

    def apply(st: StageState) -> None:
        volumes = dict(st.runtime.get("Volumes") or {})
        volumes.update({p: {} for p in paths})
        st.runtime["Volumes"] = volumes

    return _meta(session, state, instr, expanded, "VOLUME " + json.dumps(paths), apply,
                 f"VOLUME [{' '.join(paths)}]")


def _command(state: StageState, command: str | tuple[str, ...]) -> list[str]:
    if isinstance(command, tuple):
        return list(command)
    return [*state.shell, command]


def plan_cmd(session: Session, state: StageState, instr: Cmd, expanded: Expanded) -> PlannedStep:
    args = _command(state, instr.command)
    text = "CMD " + json.dumps(args)

    def apply(st: StageState) -> None:
        st.runtime["Cmd"] = args
        st.cmd_set = True

    return _meta(session, state, instr, expanded, text, apply, f"CMD {quoted(args)}")


def plan_entrypoint(session: Session, state: StageState, instr: Entrypoint,
                    expanded: Expanded) -> PlannedStep:
    args = _command(state, instr.command)
    text = "ENTRYPOINT " + json.dumps(args)

    def apply(st: StageState) -> None:
        st.runtime["Entrypoint"] = args
        if not st.cmd_set:
            st.runtime.pop("Cmd", None)  # Docker: an inherited CMD is reset by ENTRYPOINT

    return _meta(session, state, instr, expanded, text, apply, f"ENTRYPOINT {quoted(args)}")


def plan_shell(session: Session, state: StageState, instr: Shell, expanded: Expanded) -> PlannedStep:
    shell = list(instr.shell)

    def apply(st: StageState) -> None:
        st.runtime["Shell"] = shell

    return _meta(session, state, instr, expanded, "SHELL " + json.dumps(shell), apply,
                 f"SHELL [{' '.join(shell)}]")


def plan_stopsignal(session: Session, state: StageState, instr: Stopsignal,
                    expanded: Expanded) -> PlannedStep:
    sig = expanded.instruction.signal  # type: ignore[union-attr]
    check_signal(sig, instr.line)

    def apply(st: StageState) -> None:
        st.runtime["StopSignal"] = sig

    return _meta(session, state, instr, expanded, f"STOPSIGNAL {sig}", apply)


def check_signal(sig: str, line: int) -> None:
    text = sig.upper()
    if text.isdigit() and 0 < int(text) < 65:
        return
    name = text if text.startswith("SIG") else "SIG" + text
    if name in signal.Signals.__members__ or name.startswith("SIGRTM"):
        return
    raise DockerfileError(f"invalid signal: {sig}", line=line,
                          hint="use a signal name (SIGTERM, SIGQUIT, SIGINT) or number")


def plan_healthcheck(session: Session, state: StageState, instr: Healthcheck,
                     expanded: Expanded) -> PlannedStep:
    health: dict[str, Any] = {"Test": list(instr.test)}
    for field, value in (("Interval", instr.interval), ("Timeout", instr.timeout),
                         ("StartPeriod", instr.start_period),
                         ("StartInterval", instr.start_interval), ("Retries", instr.retries)):
        if value:
            health[field] = value
    text = "HEALTHCHECK " + json.dumps(health, sort_keys=True)

    def apply(st: StageState) -> None:
        st.runtime["Healthcheck"] = health

    return _meta(session, state, instr, expanded, text, apply)


def plan_user(session: Session, state: StageState, instr: User, expanded: Expanded) -> PlannedStep:
    user = expanded.instruction.user  # type: ignore[union-attr]

    def apply(st: StageState) -> None:
        st.runtime["User"] = user

    return _meta(session, state, instr, expanded, f"USER {user}", apply)


def plan_maintainer(session: Session, state: StageState, instr: Maintainer,
                    expanded: Expanded) -> PlannedStep:
    def apply(st: StageState) -> None:
        st.image["author"] = instr.name

    return _meta(session, state, instr, expanded, f"MAINTAINER {instr.name}", apply)


def plan_onbuild(session: Session, state: StageState, instr: Onbuild,
                 expanded: Expanded) -> PlannedStep:
    expression = instr.expression

    def apply(st: StageState) -> None:
        st.runtime["OnBuild"] = [*(st.runtime.get("OnBuild") or []), expression]

    step = _meta(session, state, instr, expanded, f"ONBUILD {expression}", apply)
    step.created_by = ""  # BuildKit records no history entry for ONBUILD
    return step


def normalize_workdir(current: str, path: str) -> str:
    """BuildKit's NormalizeWorkdir: relative to the current one, cleaned, absolute."""
    joined = path if path.startswith("/") else posixpath.join(current or "/", path)
    return posixpath.normpath("/" + joined.lstrip("/")) if joined else "/"


def plan_workdir(session: Session, state: StageState, instr: Workdir,
                 expanded: Expanded) -> PlannedStep:
    workdir = normalize_workdir(state.workdir, expanded.instruction.path)  # type: ignore[union-attr]
    user = state.user

    def apply(st: StageState) -> None:
        st.runtime["WorkingDir"] = workdir

    def execute() -> LayerRecord | None:
        return make_directory(session, state, workdir, user, instr.line)

    step = _meta(session, state, instr, expanded, f"WORKDIR {workdir}", apply)
    if workdir != "/":
        step.execute = execute
    return step


def make_directory(session: Session, state: StageState, path: str, user: str,
                   line: int) -> LayerRecord | None:
    """``mkdir -p path`` as a layer (owned by ``user`` when set), or None if it exists."""
    view = session.view(state.layers)
    try:
        parts, found = view.resolve(path)
    except NotADirectoryError as exc:
        raise BuildError(f"WORKDIR {path}: {exc.filename} is not a directory", line=line,
                         step=f"WORKDIR {path}") from None
    if found is not None:
        if found.node.kind == "d":
            return None
        raise BuildError(f"WORKDIR {path}: it exists and is not a directory", line=line,
                         step=f"WORKDIR {path}", hint="choose another path, or remove the file")
    owner = resolve_owner(view, user, what="WORKDIR") if user else (0, 0)
    return write_layer(session, parent_entries(view, parts, owner=owner))
