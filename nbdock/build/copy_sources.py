"""Where COPY reads from: the build context, or (``--from``) another stage or an image.

Both answer ``select(source) -> [Selected]`` with the same ``FileEntry`` descriptions, so the
COPY step writes its layer the same way whatever the origin. A source missing from the context
becomes a teacher-grade error: it says whether ``.dockerignore`` excludes it, which names are
close, and where the context is.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from nbdock.build.context import BuildContext, FileEntry, Selected, SourceNotFound, clean_source
from nbdock.build.globs import has_wildcards, match_component, unescape
from nbdock.build.rootfs import Found, RootView
from nbdock.errors import BuildError


class ViewSource:
    """Files of another stage or image, read through its (unpacked) layers."""

    def __init__(self, view: RootView, label: str) -> None:
        self.view = view
        self.label = label

    def select(self, source: str) -> list[Selected]:
        rel = clean_source(source)
        if not has_wildcards(rel):
            return [self._one(unescape(rel))]
        return [self._one(m) for m in self._glob(rel)]

    def _one(self, rel: str) -> Selected:
        try:
            parts, found = self.view.resolve("/" + rel)
        except OSError:
            found = None
        if found is None:
            raise SourceNotFound(rel, ignored=False)
        return Selected(rel, tuple(self._collect(parts, found)))

    def _glob(self, pattern: str) -> list[str]:
        matches = [""]
        for component in pattern.split("/"):
            found: list[str] = []
            for base in matches:
                if not has_wildcards(component):
                    candidate = f"{base}/{unescape(component)}" if base else unescape(component)
                    if self.view.lookup("/" + candidate, follow=False) is not None:
                        found.append(candidate)
                    continue
                try:
                    parts, node = self.view.resolve("/" + base)
                except OSError:
                    continue
                if node is None or node.node.kind != "d":
                    continue
                names = sorted(n for n, _, _ in self.view.listdir(parts, self.view.floor_of(parts)))
                found += [f"{base}/{n}" if base else n for n in names if match_component(component, n)]
            matches = found
        return matches

    def _entry(self, rel: str, found: Found) -> FileEntry:
        node = found.node
        path = self.view.host_path(found) if node.kind == "f" else ""
        return FileEntry(rel, path, node.kind if node.kind in "fdl" else "p", node.mode,
                         node.uid, node.gid, node.size, link=node.link)

    def _collect(self, parts: tuple[str, ...], found: Found) -> list[FileEntry]:
        out = [self._entry("", found)]
        if found.node.kind == "d":
            self._walk(parts, self.view.floor_of(parts), "", out)
        return out

    def _walk(self, parts: tuple[str, ...], floor: int, rel: str, out: list[FileEntry]) -> None:
        for name, child, child_floor in sorted(self.view.listdir(parts, floor), key=lambda t: t[0]):
            if child.node.kind in "cb":
                continue
            child_rel = f"{rel}/{name}" if rel else name
            out.append(self._entry(child_rel, child))
            if child.node.kind == "d":
                self._walk(parts + (name,), child_floor, child_rel, out)


def missing_source_error(context: BuildContext | None, exc: SourceNotFound, instruction: str,
                         line: int, origin: str = "the build context") -> BuildError:
    """"COPY: app.py not found" — and why, and what the user may have meant."""
    path = exc.path or "."
    step = instruction.strip().splitlines()[0]
    if exc.ignored:
        return BuildError(
            f"{path!r} is excluded by .dockerignore, so it is not in the build context",
            step=step, line=line,
            hint="remove its pattern from .dockerignore (or add a !exception), or copy "
                 "something else",
        )
    hint = f"paths are relative to {origin}"
    if context is not None:
        hint = f"paths are relative to the build context {context.root}"
        suggestion = _closest(context.root, path)
        if suggestion:
            hint = f"did you mean {suggestion!r}? ({hint})"
    return BuildError(f"{path!r} not found in {origin}", step=step, line=line, hint=hint)


def _closest(root: Path, rel: str) -> str | None:
    parent, _, name = rel.rpartition("/")
    directory = root / parent if parent else root
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    lowered = {n.lower(): n for n in names}
    if name.lower() in lowered:
        match = lowered[name.lower()]
    else:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if not close:
            return None
        match = close[0]
    return f"{parent}/{match}" if parent else match
