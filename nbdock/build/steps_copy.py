"""COPY and ADD: files into the image, written as a layer straight from their source.

Docker's rules for where things go (BuildKit's ``dispatchCopy`` and fsutil's copier):

- a relative destination is relative to WORKDIR; ``.`` means "into WORKDIR";
- a source directory's *contents* are copied, not the directory itself;
- a source file goes *into* the destination when it ends with ``/`` or is an existing directory
  (symlinks to directories count), and *becomes* the destination otherwise;
- several sources (wildcards included) need a destination ending with ``/``;
- a wildcard that matches nothing copies nothing; a plain path that is missing is an error;
- copied files keep their mode, become root-owned (``--chown`` changes that, ``--chmod`` the
  mode); directories that already exist keep their mode and owner; missing ones are created 0755.

The cache key hashes the files' names, types, modes, owners and contents (from the stat cache),
never their mtimes; for ``--from`` it is the source stage's key or the source image's id.
"""

from __future__ import annotations

import json
import posixpath

from nbdock.build import steps_add
from nbdock.build.cache import StepInputs
from nbdock.build.context import FileEntry, Selected, SourceNotFound, clean_source, files_digest
from nbdock.build.copy_sources import ViewSource, missing_source_error
from nbdock.build.rootfs import RootView
from nbdock.build.session import PlannedStep, Session
from nbdock.build.state import StageState
from nbdock.build.steps_meta import used_args
from nbdock.build.users import resolve_owner
from nbdock.build.writelayer import Entry, parent_entries, write_layer
from nbdock.dockerfile import Add, Copy, DockerIgnore, Expanded
from nbdock.errors import BuildError, DockerfileError, ImageNotFound, InvalidReference
from nbdock.image.records import LayerRecord


def normalize_dest(workdir: str, dest: str) -> tuple[str, bool]:
    """(absolute clean destination, whether it names a directory by its syntax)."""
    if dest in ("", "."):
        dest = "./"
    dir_syntax = dest.endswith("/") or dest.endswith("/.")
    return posixpath.normpath(posixpath.join(workdir or "/", dest)), dir_syntax


def parse_chmod(text: str | None, line: int) -> int | None:
    if text is None:
        return None
    try:
        value = int(text, 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o7777:
        raise DockerfileError(f"invalid chmod parameter: {text!r}", line=line,
                              hint="give an octal mode between 0 and 7777, e.g. --chmod=755")
    return value


def _stage_source(session: Session, ref: str, line: int, text: str) -> tuple[str, ViewSource]:
    """(cache-key part, reader) for ``--from=<stage|index|image>``."""
    index = session.stage_names.get(ref.lower())
    if index is None and ref.isdigit():
        index = int(ref)
    if index is not None:
        result = session.stages.get(index)
        if result is None:
            raise BuildError(f"COPY --from={ref}: that stage comes after this one", line=line,
                             step=text, hint="a stage can only copy from stages defined before it")
        layers = result.state.layers
        key = result.state.key
    else:
        try:
            image = session.store.get(ref)
        except (ImageNotFound, InvalidReference):
            names = sorted(session.stage_names)
            hint = (f"stages defined so far: {', '.join(names)}" if names
                    else "name a stage with FROM … AS <name>, or build/pull the image first")
            raise BuildError(f"COPY --from={ref}: no stage or image of that name", line=line,
                             step=text, hint=hint) from None
        layers = list(image.layers)
        key = image.id
    session.unpacked(layers)  # a stage's files are read from its unpacked layers
    return key, ViewSource(session.view(layers), ref)


def plan_copy(session: Session, state: StageState, instr: Copy | Add,
              expanded: Expanded) -> PlannedStep:
    exp = expanded.instruction
    assert isinstance(exp, (Copy, Add))
    is_add = isinstance(exp, Add)
    name = "ADD" if is_add else "COPY"
    display = instr.original.strip().splitlines()[0]
    dest, dir_syntax = normalize_dest(state.workdir, exp.dest)
    chmod = parse_chmod(exp.chmod, instr.line)
    from_ref = exp.from_stage if isinstance(exp, Copy) else None
    if is_add and exp.checksum and not all(steps_add.is_url(s) for s in exp.sources):  # type: ignore[union-attr]
        raise DockerfileError("ADD --checksum needs an http(s) source", line=instr.line)
    selections: list[tuple[str, Selected]] = []
    key_from: str | None = None
    if from_ref:
        key_from, source = _stage_source(session, from_ref, instr.line, display)
        origin = f"stage/image {from_ref!r}"
    else:
        source = session.context  # type: ignore[assignment]
        origin = "the build context"
    urls = []
    for index, src in enumerate(exp.sources):
        if is_add and steps_add.is_git(src):
            raise BuildError(f"ADD {src}: git sources are not supported by nbdock yet",
                             line=instr.line, step=display,
                             hint="clone in a RUN step (RUN git clone …), or ADD a tarball URL")
        if steps_add.is_url(src):
            if not is_add:
                raise DockerfileError("COPY cannot download a URL", line=instr.line,
                                      instruction=display, hint=f"use ADD {src} {exp.dest}")
            urls.append(src)
            continue
        try:
            found = source.select(src)
        except SourceNotFound as exc:
            ctx = None if from_ref else session.context
            raise missing_source_error(ctx, exc, instr.original, instr.line, origin) from None
        if getattr(exp, "parents", False) and "/./" in src:
            pivot = clean_source(src.split("/./", 1)[0])  # --parents keeps what follows /./
            for selected in found:
                selected.keep_from = len(pivot) + 1 if pivot else 0
        selections += [(str(index), s) for s in _excluding(found, exp.exclude)]
    downloads = [steps_add.fetch(session, url, exp.checksum, instr.line)  # type: ignore[union-attr]
                 for url in urls]
    selections += [(f"url{i}", d) for i, d in enumerate(downloads)]
    docs = [(doc.name, doc.content.encode()) for doc in exp.heredocs]
    count = len(selections) + len(docs)
    if count > 1 and not dir_syntax:
        raise DockerfileError(
            f"when using {name} with more than one source file, the destination must be a "
            "directory and end with a /", line=instr.line, instruction=display,
            hint=f"write the destination as {exp.dest.rstrip('/')}/")
    if from_ref:
        # The files come from a stage (or image) whose key says all about them.
        digest, manifest = key_from, {f"<files of {from_ref}>": (key_from or "")[7:23]}
    else:
        digest, manifest = files_digest(selections)
    text = json.dumps({
        name: list(exp.sources), "dest": exp.dest, "workdir": state.workdir,
        "chown": exp.chown, "chmod": exp.chmod, "from": from_ref,
        "parents": getattr(exp, "parents", False), "exclude": list(exp.exclude),
        "heredocs": docs and [[n, d.decode()] for n, d in docs],
        "checksum": getattr(exp, "checksum", None),
    }, sort_keys=True)
    inputs = StepInputs(original=instr.original.strip(), text=text,
                        args=used_args(session, state, expanded), files=digest,
                        manifest=manifest)
    shown_sources = " ".join([*exp.sources, *(f"<<{n}" for n, _ in docs)])
    flags = "".join(f" --{k}={v}" for k, v in (("chown", exp.chown), ("chmod", exp.chmod),
                                                 ("from", from_ref)) if v)
    created_by = f"{name}{flags} {shown_sources} {exp.dest}"

    def execute() -> LayerRecord | None:
        view = session.view(state.layers)
        owner = resolve_owner(view, exp.chown, what=f"{name} --chown") if exp.chown else (0, 0)
        plan = _Placement(view, dest, dir_syntax, owner, chmod, display, instr.line)
        for _, pending in selections:
            selected = steps_add.resolve_pending(session, pending)
            if is_add and not from_ref and steps_add.is_local_archive(selected):
                plan.archive(selected)
            else:
                plan.place(selected, getattr(exp, "parents", False))
        for doc_name, data in docs:
            plan.data(doc_name, data)
        return write_layer(session, plan.entries)

    return PlannedStep(inputs, created_by, execute=execute)


def _excluding(found: list[Selected], patterns: tuple[str, ...]) -> list[Selected]:
    if not patterns:
        return found
    ignore = DockerIgnore.from_patterns(patterns)
    out = []
    for selected in found:
        if ignore.matches(selected.name):
            continue
        entries = [e for e in selected.entries if not e.rel or not ignore.matches(e.rel)]
        kept = Selected(selected.name, tuple(entries))
        kept.keep_from = selected.keep_from
        out.append(kept)
    return out


class _Placement:
    """Turns selected sources into layer entries at their destination."""

    def __init__(self, view: RootView, dest: str, dir_syntax: bool, owner: tuple[int, int],
                 chmod: int | None, display: str, line: int) -> None:
        self.view = view
        self.owner = owner
        self.chmod = chmod
        self.dir_syntax = dir_syntax
        self.entries: list[Entry] = []
        try:
            self.dest_parts, found = view.resolve(dest)
        except NotADirectoryError as exc:
            raise BuildError(f"cannot copy to {dest}: {exc.filename} is not a directory",
                             step=display, line=line) from None
        self.dest_is_dir = found is not None and found.node.kind == "d"
        self.dest_exists = found is not None
        self.display = display
        self.line = line

    def _parents(self, parts: tuple[str, ...]) -> None:
        self.entries += parent_entries(self.view, parts, owner=self.owner)

    def _mode(self, mode: int) -> int:
        return self.chmod if self.chmod is not None else mode

    def _add(self, parts: tuple[str, ...], entry: FileEntry) -> None:
        name = "/".join(parts)
        if entry.kind == "d":
            found = self.view.lookup("/" + name, follow=False)
            if found is not None and found.node.kind == "d":
                node = found.node
                self.entries.append(Entry(name, "d", node.mode, node.uid, node.gid))
            else:
                self.entries.append(Entry(name, "d", self._mode(entry.mode), *self.owner))
        elif entry.kind == "l":
            self.entries.append(Entry(name, "l", 0o777, *self.owner, link=entry.link))
        elif entry.kind == "f":
            self.entries.append(Entry(name, "f", self._mode(entry.mode), *self.owner,
                                      size=entry.size, source=entry.path))

    def place(self, selected: Selected, parents: bool) -> None:
        top = selected.entries[0]
        base = self.dest_parts
        if parents:
            keep = selected.name[selected.keep_from:]
            base = base + tuple(p for p in keep.split("/") if p)
            if top.kind != "d":
                self._parents(base[:-1])
                self._add(base, top)
                return
        if top.kind == "d":
            self._parents(base)
            for entry in selected.entries[1:]:
                self._add(base + tuple(entry.rel.split("/")), entry)
            return
        if self.dir_syntax or self.dest_is_dir or parents:
            target = base + (posixpath.basename(selected.name) or "file",)
        else:
            target = base
        self._parents(target[:-1])
        self._add(target, top)

    def data(self, name: str, data: bytes) -> None:
        target = self.dest_parts + (name,) if (self.dir_syntax or self.dest_is_dir) else self.dest_parts
        self._parents(target[:-1])
        self.entries.append(Entry("/".join(target), "f", self._mode(0o644), *self.owner,
                                  size=len(data), data=data))

    def archive(self, selected: Selected) -> None:
        """ADD of a local tar archive: its entries, extracted into the destination."""
        self._parents(self.dest_parts)
        for entry in steps_add.archive_entries(selected.entries[0].path):
            parts = self.dest_parts + tuple(entry.name.split("/"))
            self._parents(parts[:-1])
            uid, gid = self.owner if self.owner != (0, 0) else (entry.uid, entry.gid)
            self.entries.append(Entry("/".join(parts), entry.kind, self._mode(entry.mode), uid,
                                      gid, entry.size, data=entry.data, link=entry.link))
