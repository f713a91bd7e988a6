"""RUN: a command in a container of the runtime, its changes committed as a layer.

The container is an ordinary one of ``nbdock.runtime`` (namespaces, seccomp, capabilities —
the isolation of ``docker run``), created in the builder's own runtime root so that it never
shows in ``nbdock ps -a``, and removed once its layer is stored. Its network is the host's by
default, like BuildKit's OCI worker (so ``apt-get``/``pip`` work); ``RUN --network=none`` cuts it.

The layer is the container's overlay upper directory, and only that: what the command changed.
Before it is turned into a tar, the mount points the runtime had to create (``/proc``,
``/etc/hosts``, the targets of ``--mount``…) are removed when the image did not have them, and
directories overlayfs merely copied up are dropped — so ``RUN echo hi`` makes no layer at all,
and a layer's cost follows the size of the change, not of the image.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from nbdock.build import run_mounts
from nbdock.build.cache import StepInputs
from nbdock.build.events import StepOutput
from nbdock.build.layerindex import index_from_dir
from nbdock.build.layertar import store_layer
from nbdock.build.rootfs import RootView
from nbdock.build.session import PlannedStep, Session
from nbdock.build.state import StageState
from nbdock.dockerfile import Run
from nbdock.errors import BuildError
from nbdock.image.difftar import diff_to_tar
from nbdock.image.records import LayerRecord
from nbdock.runtime.spec import ContainerSpec, Mount, Process

HOSTNAME = "buildkitsandbox"
RUNTIME_STUBS = ("/proc", "/sys", "/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
TAIL_LINES = 20
_HEREDOC_ONLY = re.compile(r"<<-?\s*(['\"]?)([^\s'\"]+)\1")


PROXY_ARGS = frozenset(
    name for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)


def proxy_env(build_args: Mapping[str, str]) -> dict[str, str]:
    """Docker's predefined proxy args: given with --build-arg, RUN sees them without an ARG,
    and (being about the host, not the image) they stay out of the history and the cache key."""
    return {k: v for k, v in build_args.items() if k in PROXY_ARGS}


def command_args(state: StageState, instr: Run) -> tuple[list[str], dict[str, bytes]]:
    """The argv of a RUN, BuildKit's way, and the files to mount at ``/dev/pipes``.

    A RUN that is a single heredoc runs its body: written as an executable file when it starts
    with ``#!``, else given to the shell as the script. Any other heredoc use is handed to the
    shell whole, which understands heredocs itself.
    """
    if instr.is_exec_form:
        assert isinstance(instr.command, tuple)
        if instr.heredocs:
            raise BuildError("a heredoc needs the shell form of RUN", line=instr.line)
        return list(instr.command), {}
    command = str(instr.command)
    pipes: dict[str, bytes] = {}
    if instr.heredocs:
        if _HEREDOC_ONLY.fullmatch(command.strip()):
            doc = instr.heredocs[0]
            if doc.content.startswith("#!"):
                pipes[doc.name] = doc.content.encode()
                return [f"/dev/pipes/{doc.name}"], pipes
            command = doc.content
        else:
            command += "".join(f"\n{doc.content}{doc.name}" for doc in instr.heredocs)
    return [*state.shell, command], pipes


def created_by(state: StageState, argv: list[str]) -> str:
    """BuildKit's history line: ``RUN |2 A=1 B=2 /bin/sh -c make`` (the ARGs it ran with)."""
    args = state.stage_args
    prefix = ""
    if args:
        shown = {name: state.build_env.get(name, value or "") for name, value in args}
        prefix = f"|{len(shown)} " + " ".join(f"{k}={v}" for k, v in shown.items()) + " "
    return "RUN " + prefix + " ".join(argv)


def plan_run(session: Session, state: StageState, instr: Run) -> PlannedStep:
    argv, pipes = command_args(state, instr)
    if instr.security == "insecure":
        raise BuildError("RUN --security=insecure is not allowed by nbdock", line=instr.line,
                         hint="remove the flag; builds run with the default confinement")
    network = session.options.network if instr.network == "default" else instr.network
    mounts = [run_mounts.key_part(session, state, m) for m in instr.mounts]
    text = json.dumps({"RUN": argv, "network": network, "mounts": mounts,
                       "pipes": sorted(pipes)}, sort_keys=True)
    args = state.args_in_effect()
    session.used_build_args |= set(args)
    inputs = StepInputs(original=instr.original.strip(), text=text, args=args)

    def execute() -> LayerRecord | None:
        return run_step(session, state, instr, argv, pipes, network)

    return PlannedStep(inputs, created_by(state, argv), execute=execute)


def run_step(session: Session, state: StageState, instr: Run, argv: list[str],
             pipes: dict[str, bytes], network: str) -> LayerRecord | None:
    prepared = run_mounts.prepare(session, state, instr.mounts)
    layers = session.unpacked(state.layers)
    temp = tempfile.mkdtemp(prefix="run-", dir=session.state_dir)
    mounts = list(prepared.mounts)
    if pipes:
        pipe_dir = Path(temp) / "pipes"
        pipe_dir.mkdir()
        for name, data in pipes.items():
            (pipe_dir / name).write_bytes(data)
            os.chmod(pipe_dir / name, 0o755)
        mounts.append(Mount(target="/dev/pipes", source=str(pipe_dir), readonly=True))
    env = {**proxy_env(session.options.build_args), **state.build_env, **prepared.env}
    spec = ContainerSpec(
        id=secrets.token_hex(32),
        process=Process(args=tuple(argv), env=tuple(f"{k}={v}" for k, v in env.items()),
                        cwd=state.workdir, user=state.user),
        layers=tuple(layers),
        hostname=HOSTNAME,
        mounts=tuple(mounts),
        network="host" if network == "host" else "none",
        annotations={"nbdock.build": "1"},
    )
    runtime = session.runtime
    exited = False
    try:
        runtime.create(spec)
        try:
            exit_code, tail = _attach(session, runtime.start(spec.id))
            exited = True
            if exit_code != 0:
                raise _failed(instr, argv, exit_code, tail, session)
            upper = runtime.paths(spec.id).upper
            view = session.view(state.layers)
            clean_upper(upper, view, [*RUNTIME_STUBS, *prepared.stubs])
            if not any(upper.iterdir()):
                return None
            layer = store_layer(session.store,
                                lambda out: diff_to_tar(upper, out, epoch=session.epoch))
            session.indexes.save(layer.diff_id.removeprefix("sha256:"), index_from_dir(upper), {})
            return layer
        finally:
            if exited and os.geteuid() == 0:  # rootless, the runtime knows how to delete
                discard_later(runtime.paths(spec.id).upper, session.state_dir / "trash")
            runtime.remove(spec.id, force=True)
    finally:
        prepared.cleanup()
        shutil.rmtree(temp, ignore_errors=True)


def discard_later(directory: Path, trash: Path) -> None:
    """Move a finished container's upper dir aside and delete it in the background.

    Deleting the thousands of files an ``apt-get install`` leaves costs a fifth of a second that
    the next step need not wait for. A process that exits first leaves the rest in ``trash``,
    which the next builder empties (``Builder._sweep``).
    """
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{os.getpid()}-{secrets.token_hex(8)}"
    try:
        os.rename(directory, target)
    except OSError:
        return
    threading.Thread(target=shutil.rmtree, args=(target,), kwargs={"ignore_errors": True},
                     name="nbdock-build-trash", daemon=True).start()


def _attach(session: Session, attachment: object) -> tuple[int, list[str]]:
    """Stream the container's output as events; return its exit code and last lines."""
    from nbdock.runtime.attachment import Attachment

    assert isinstance(attachment, Attachment)
    tail: list[str] = []
    partial = {1: "", 2: ""}
    # A chunk may end inside a UTF-8 sequence: decode each stream incrementally.
    decoders = {n: codecs.getincrementaldecoder("utf-8")("replace") for n in (1, 2)}
    step = session.current_step
    try:
        for record in attachment.records():
            if record.stream not in (1, 2):
                continue
            text = decoders[record.stream].decode(record.data)
            if not text:
                continue
            session.emit(StepOutput(step, "stdout" if record.stream == 1 else "stderr", text))
            lines = (partial[record.stream] + text).split("\n")
            partial[record.stream] = lines.pop()
            tail.extend(lines)
            del tail[:-TAIL_LINES]
    finally:
        attachment.close()
    tail.extend(p for p in partial.values() if p)
    session.log.extend(tail)
    code = attachment.exit_code
    if code is None:
        code = 125
    if attachment.error and code != 0:
        tail.append(attachment.error)
    return code, tail[-TAIL_LINES:]


def _failed(instr: Run, argv: list[str], exit_code: int, tail: list[str],
            session: Session) -> BuildError:
    shown = " ".join(argv)
    hints = {
        127: "a command was not found: is it installed in the image (or on PATH)?",
        126: "a command is not executable: check its mode (chmod +x) and its #! line",
    }
    hint = hints.get(exit_code, "fix the command and build again: the steps before it stay "
                                "cached")
    last = "\n".join(f"    {line}" for line in tail[-8:])
    message = f"RUN {shown!r} failed with exit code {exit_code}"
    if last:
        message += f"; its last output:\n{last}\n"
    return BuildError(message, step=instr.original.strip().splitlines()[0], line=instr.line,
                      exit_code=exit_code, build_log=list(session.log), hint=hint)


def clean_upper(upper: Path, view: RootView, stubs: list[str]) -> None:
    """Remove mount-point stubs the image did not have, then directories only copied up."""
    for stub in sorted(stubs, key=lambda s: s.count("/"), reverse=True):
        try:
            parts, found = view.resolve(stub, follow=False)
        except OSError:
            continue
        if found is not None or not parts:
            continue
        path = upper.joinpath(*parts)
        _remove_if_empty(path)
        for depth in range(len(parts) - 1, 0, -1):
            if view.lookup("/" + "/".join(parts[:depth]), follow=False) is not None:
                break
            if not _remove_if_empty(upper.joinpath(*parts[:depth])):
                break
    _prune(upper, (), view)


def _remove_if_empty(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if stat.S_ISDIR(st.st_mode):
        try:
            os.rmdir(path)
        except OSError:
            return False
        return True
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        os.unlink(path)
        return True
    return False


def _prune(directory: Path, parts: tuple[str, ...], view: RootView) -> bool:
    """Drop empty, non-opaque directories whose metadata equals the image's; True if removed."""
    with os.scandir(directory) as scan:
        children = [e for e in scan if e.is_dir(follow_symlinks=False)]
    for child in children:
        _prune(Path(child.path), parts + (child.name,), view)
    if not parts or any(os.scandir(directory)):
        return False
    st = os.lstat(directory)
    found = view.lookup("/" + "/".join(parts), follow=False)
    if found is None or found.node.kind != "d" or found.node.opaque:
        return False
    node = found.node
    if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (node.mode, node.uid, node.gid):
        return False
    for namespace in ("trusted.", "user."):
        try:
            if os.getxattr(directory, namespace + "overlay.opaque") == b"y":
                return False
        except OSError:
            pass
    os.rmdir(directory)
    return True


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 3)
