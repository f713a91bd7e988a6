"""``RUN --mount=…``: BuildKit's four mount types, made of the runtime's bind and tmpfs mounts.

- ``cache``: a directory kept under ``<state>/cache-mounts/`` across builds (``id`` defaults to
  the target), created with ``mode``/``uid``/``gid``; its content is never part of a layer or of
  the cache key — it is a cache, such as ``/root/.cache/pip`` or ``/var/cache/apt``.
- ``bind``: a path of the build context (or of a stage or image with ``from=``), read-only
  unless ``rw`` (then writes go to a throw-away copy). Its content is part of the cache key.
- ``tmpfs``: a fresh tmpfs (``size=``).
- ``secret``: the file given with ``--secret id=ID,src=PATH``, read-only at
  ``/run/secrets/ID`` (or ``target=``), or in the variable ``env=`` — never in a layer, never in
  the cache key, never in the history.

``prepare`` runs before the container starts and returns the runtime mounts, extra environment
and the paths whose mount-point stubs must be removed from the layer afterwards.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nbdock.build.context import SourceNotFound, files_digest
from nbdock.build.session import Session
from nbdock.build.state import StageState
from nbdock.dockerfile import Mount as RunMount
from nbdock.errors import BuildError
from nbdock.runtime.spec import Mount


@dataclass
class PreparedMounts:
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stubs: list[str] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        for directory in self.temp_dirs:
            shutil.rmtree(directory, ignore_errors=True)


def _abs_target(target: str | None, workdir: str) -> str:
    if not target:
        raise BuildError("a RUN --mount needs target=<path in the container>",
                         hint="write e.g. --mount=type=cache,target=/root/.cache")
    return posixpath.normpath(posixpath.join(workdir, target))


def key_part(session: Session, state: StageState, mount: RunMount) -> dict[str, object]:
    """What of a mount goes into the RUN's cache key (content for bind mounts, never secrets)."""
    part: dict[str, object] = {"type": mount.type, "target": mount.target}
    if mount.type == "bind":
        part.update(source=mount.source or "/", readonly=mount.readonly)
        if mount.from_stage:
            part["from"] = source_stage_key(session, mount.from_stage)
        else:
            try:
                selected = session.context.select(mount.source or ".")
            except SourceNotFound as exc:
                raise BuildError(f"RUN --mount: {exc.path!r} is not in the build context") from None
            part["files"] = files_digest(("bind", s) for s in selected)[0]
    elif mount.type == "cache":
        part.update(id=mount.id, sharing=mount.sharing, mode=mount.mode, uid=mount.uid,
                    gid=mount.gid)
    elif mount.type == "tmpfs":
        part["size"] = mount.size
    elif mount.type == "secret":
        part.update(id=mount.id or mount.source, env=mount.env, required=mount.required)
    return part


def source_stage_key(session: Session, ref: str) -> str:
    """The cache key of a finished stage named/numbered ``ref``, or the id of image ``ref``."""
    index = session.stage_names.get(ref.lower())
    if index is None and ref.isdigit():
        index = int(ref)
    if index is not None and index in session.stages:
        return session.stages[index].state.key
    return session.store.get(ref).id


def prepare(session: Session, state: StageState, mounts: tuple[RunMount, ...]) -> PreparedMounts:
    out = PreparedMounts()
    try:
        for mount in mounts:
            _prepare_one(session, state, mount, out)
    except BaseException:
        out.cleanup()
        raise
    return out


def _prepare_one(session: Session, state: StageState, mount: RunMount, out: PreparedMounts) -> None:
    workdir = state.workdir
    if mount.type == "cache":
        target = _abs_target(mount.target, workdir)
        ident = mount.id or target
        host = session.state_dir / "cache-mounts" / hashlib.sha256(ident.encode()).hexdigest()[:32]
        if not host.is_dir():
            host.mkdir(parents=True, mode=0o755)
            os.chmod(host, mount.mode if mount.mode is not None else 0o755)
            try:
                os.chown(host, mount.uid or 0, mount.gid or 0)
            except PermissionError:
                pass  # rootless: the directory is the caller's, which is root in the container
        out.mounts.append(Mount(target=target, source=str(host)))
        out.stubs.append(target)
    elif mount.type == "tmpfs":
        target = _abs_target(mount.target, workdir)
        options = (f"size={mount.size}",) if mount.size else ()
        out.mounts.append(Mount(target=target, type="tmpfs", options=("mode=1777", *options)))
        out.stubs.append(target)
    elif mount.type == "bind":
        target = _abs_target(mount.target, workdir)
        source = _bind_source(session, mount, out)
        out.mounts.append(Mount(target=target, source=source, readonly=mount.readonly))
        out.stubs.append(target)
    elif mount.type == "secret":
        _secret(session, mount, workdir, out)
    else:
        raise BuildError(f"RUN --mount=type={mount.type} is not supported by nbdock",
                         hint="use type=secret for credentials, or bind/cache/tmpfs")


def _secret(session: Session, mount: RunMount, workdir: str, out: PreparedMounts) -> None:
    ident = mount.id or mount.source or posixpath.basename(mount.target or "")
    src = session.options.secrets.get(ident)
    if src is None:
        if mount.required:
            raise BuildError(f"secret {ident!r} is required but was not given",
                             hint=f"pass it with --secret id={ident},src=<file>")
        return
    if mount.env:
        out.env[mount.env] = Path(src).read_text().rstrip("\n")
        if not mount.target:
            return
    target = _abs_target(mount.target or f"/run/secrets/{ident}", workdir)
    out.mounts.append(Mount(target=target, source=os.path.realpath(src), readonly=True))
    out.stubs.append(target)


def _bind_source(session: Session, mount: RunMount, out: PreparedMounts) -> str:
    """A host path holding the bind mount's source (a throw-away copy when it must be one)."""
    source = (mount.source or "/").lstrip("/")
    if mount.from_stage:
        ref = mount.from_stage
        index = session.stage_names.get(ref.lower())
        if index is None and ref.isdigit():
            index = int(ref)
        layers = (session.stages[index].state.layers if index is not None
                  and index in session.stages else list(session.store.get(ref).layers))
        view = session.indexes.view(layers)
        session.unpacked(layers)  # reading through the view needs unpacked layers
        view = session.indexes.view(layers)
        temp = tempfile.mkdtemp(prefix="bind-", dir=session.state_dir)
        out.temp_dirs.append(temp)
        from nbdock.build.materialize import materialize

        materialize(view, "/" + source, Path(temp) / "m", link=mount.readonly)
        return str(Path(temp) / "m")
    context = session.context
    if not context.ignore and mount.readonly:
        real = context.root / source
        if not real.exists():
            raise BuildError(f"RUN --mount: {source!r} is not in the build context")
        return os.path.realpath(real)
    temp = tempfile.mkdtemp(prefix="bind-", dir=session.state_dir)
    out.temp_dirs.append(temp)
    from nbdock.build.materialize import copy_context

    try:
        selected = context.select(source or ".")
    except SourceNotFound as exc:
        raise BuildError(f"RUN --mount: {exc.path!r} is not in the build context") from None
    return str(copy_context(selected[0].entries, Path(temp) / "m", link=mount.readonly))
