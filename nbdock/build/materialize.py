"""Make a real directory from files the builder can see (for ``RUN --mount=type=bind``).

A bind mount needs one host directory. When the source is another stage (merged from several
layer directories) or a ``.dockerignore``-filtered part of the context, the files are gathered
into a throw-away directory: hard links when the mount is read-only (instant, and the store's
layer files cannot be changed through a read-only mount), copies when it is writable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from nbdock.build.context import FileEntry
from nbdock.build.rootfs import Found, RootView
from nbdock.errors import BuildError


def _place_file(source: str, dest: Path, link: bool) -> None:
    if link:
        try:
            os.link(source, dest)
            return
        except OSError:
            pass
    shutil.copy2(source, dest, follow_symlinks=False)


def copy_context(entries: Sequence[FileEntry], dest: Path, *, link: bool) -> Path:
    """Recreate ``entries`` (as collected from the context) under ``dest``."""
    top = entries[0]
    if top.kind != "d":
        dest.parent.mkdir(parents=True, exist_ok=True)
        _place_file(top.path, dest, link)
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for entry in entries[1:]:
        target = dest / entry.rel
        if entry.kind == "d":
            target.mkdir(exist_ok=True)
        elif entry.kind == "l":
            os.symlink(entry.link, target)
        elif entry.kind == "f":
            _place_file(entry.path, target, link)
    return dest


def materialize(view: RootView, path: str, dest: Path, *, link: bool) -> Path:
    """Recreate the merged tree at ``path`` of ``view`` (unpacked layers) under ``dest``."""
    try:
        parts, found = view.resolve(path)
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc}") from None
    if found is None:
        raise BuildError(f"{path} does not exist in the mounted stage or image")
    if found.node.kind != "d":
        dest.parent.mkdir(parents=True, exist_ok=True)
        _place_file(view.host_path(found), dest, link)
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    _fill(view, parts, view.floor_of(parts), dest, link)
    return dest


def _fill(view: RootView, parts: tuple[str, ...], floor: int, dest: Path, link: bool) -> None:
    for name, child, child_floor in sorted(view.listdir(parts, floor), key=lambda t: t[0]):
        target = dest / name
        node = child.node
        if node.kind == "d":
            target.mkdir()
            _fill(view, parts + (name,), child_floor, target, link)
            os.chmod(target, node.mode)
        elif node.kind == "l":
            os.symlink(node.link, target)
        elif node.kind == "f":
            _place_file(_host(view, child), target, link)


def _host(view: RootView, found: Found) -> str:
    return view.host_path(found)
