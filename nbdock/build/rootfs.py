"""A read-only view of an image's filesystem as a stack of layers, without mounting anything.

COPY needs to know what is already in the image (is ``/app`` a directory? a symlink to one?
what mode and owner has ``/tmp``? who is ``www-data`` in ``/etc/passwd``?) and ``COPY --from``
must read another stage's files. Mounting an overlay for that would cost a mount namespace and
leave mounts behind on a crash; the overlay rules are simple enough to apply here:

- layers are searched top-down; the first layer that has a path decides what it is;
- a whiteout (char device 0:0, or an empty file with ``overlay.whiteout``) deletes the path;
- a directory marked ``overlay.opaque=y`` hides everything below it in lower layers;
- a non-directory hides everything below it in lower layers.

A layer is either unpacked (a directory in overlay format, looked up with ``lstat``) or known
only by an index of its tar's entries (``TarIndex``), so a layer that nothing runs on is never
unpacked just to answer "does /data exist?".
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from nbdock.image.difftar import overlay_xattr

_MAX_LINKS = 40
WHITEOUT = "w"


@dataclass(frozen=True)
class Node:
    """One path in a layer: ``kind`` is f/d/l/c/b/p or ``w`` (whiteout)."""

    kind: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    size: int = 0
    link: str = ""
    opaque: bool = False


class Layer(Protocol):
    def lookup(self, parts: tuple[str, ...]) -> Node | None: ...


class DirLayer:
    """An unpacked layer directory in overlayfs' format."""

    def __init__(self, path: str) -> None:
        self.path = path

    def host_path(self, parts: tuple[str, ...]) -> str:
        return os.path.join(self.path, *parts)

    def lookup(self, parts: tuple[str, ...]) -> Node | None:
        path = self.host_path(parts)
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        return node_from_stat(path, st)

    def listdir(self, parts: tuple[str, ...]) -> list[str]:
        try:
            return os.listdir(self.host_path(parts))
        except (FileNotFoundError, NotADirectoryError):
            return []


def node_from_stat(path: str, st: os.stat_result) -> Node:
    mode = st.st_mode
    perm = stat.S_IMODE(mode)
    if stat.S_ISDIR(mode):
        return Node("d", perm, st.st_uid, st.st_gid, 0, opaque=overlay_xattr(path, "overlay.opaque") == b"y")
    if stat.S_ISREG(mode):
        if st.st_size == 0 and overlay_xattr(path, "overlay.whiteout") is not None:
            return Node(WHITEOUT)
        return Node("f", perm, st.st_uid, st.st_gid, st.st_size)
    if stat.S_ISLNK(mode):
        return Node("l", perm, st.st_uid, st.st_gid, 0, link=os.readlink(path))
    if stat.S_ISCHR(mode):
        return Node(WHITEOUT) if st.st_rdev == 0 else Node("c", perm, st.st_uid, st.st_gid)
    if stat.S_ISBLK(mode):
        return Node("b", perm, st.st_uid, st.st_gid)
    return Node("p", perm, st.st_uid, st.st_gid)




class TarIndex:
    """A layer known by its tar's entries: path → Node (whiteouts and opaque dirs applied)."""

    def __init__(self, entries: dict[str, Node]) -> None:
        self.entries = entries

    def lookup(self, parts: tuple[str, ...]) -> Node | None:
        return self.entries.get("/".join(parts))


@dataclass(frozen=True)
class Found:
    """A path resolved in the view: its node, the layer holding it, its symlink-free parts."""

    node: Node
    layer: int
    parts: tuple[str, ...]


class RootView:
    """Layers bottom first, looked at top-down as overlayfs merges them."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.layers = list(layers)

    def _child(self, parent_floor: int, parts: tuple[str, ...]) -> tuple[Found | None, int]:
        """The merged node at ``parts`` (its parent visible in layers ``parent_floor`` and up),
        and the lowest layer whose directory at ``parts`` takes part in the merge."""
        for index in range(len(self.layers) - 1, parent_floor - 1, -1):
            node = self.layers[index].lookup(parts)
            if node is None:
                continue
            if node.kind == WHITEOUT:
                return None, index
            if node.kind != "d":
                return Found(node, index, parts), len(self.layers)
            floor = index
            if not node.opaque:
                for lower in range(index - 1, parent_floor - 1, -1):
                    below = self.layers[lower].lookup(parts)
                    if below is None:
                        continue
                    if below.kind != "d":
                        break  # a whiteout or a file: hidden by this directory, as is all below
                    floor = lower
                    if below.opaque:
                        break
            return Found(node, index, parts), floor
        return None, parent_floor

    def resolve(self, path: str, *, follow: bool = True) -> tuple[tuple[str, ...], Found | None]:
        """Resolve ``path`` (absolute in the image), following symlinks in the directories on
        the way (and in the last component when ``follow``), never leaving the root.

        Returns the symlink-free parts and what is there (None: nothing, the parent exists or
        not). Raises ``NotADirectoryError`` when a component on the way is not a directory.
        """
        pending = [p for p in path.split("/") if p not in ("", ".")]
        done: tuple[str, ...] = ()
        floor = 0
        hops = 0
        found: Found | None = Found(Node("d"), 0, ())
        while pending:
            part = pending.pop(0)
            if part == "..":
                done = done[:-1]
                done, found, floor = self._reresolve(done)
                continue
            if found is None:
                done = done + (part,)
                continue  # below a missing directory: everything is missing
            if found.node.kind != "d":
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", "/" + "/".join(done))
            child, child_floor = self._child(floor, done + (part,))
            if child is not None and child.node.kind == "l" and (pending or follow):
                hops += 1
                if hops > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = child.node.link
                if target.startswith("/"):
                    done, found, floor = (), Found(Node("d"), 0, ()), 0
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                continue
            done, found, floor = done + (part,), child, child_floor
        return done, found

    def _reresolve(self, parts: tuple[str, ...]) -> tuple[tuple[str, ...], Found | None, int]:
        found: Found | None = Found(Node("d"), 0, ())
        floor = 0
        for i in range(len(parts)):
            found, floor = self._child(floor, parts[: i + 1])
            if found is None:
                return parts, None, floor
        return parts, found, floor

    def lookup(self, path: str, *, follow: bool = True) -> Found | None:
        try:
            return self.resolve(path, follow=follow)[1]
        except (NotADirectoryError, OSError):
            return None

    def is_dir(self, path: str) -> bool:
        found = self.lookup(path)
        return found is not None and found.node.kind == "d"

    # -- reading (needs unpacked layers) ---------------------------------------------------------

    def host_path(self, found: Found) -> str:
        layer = self.layers[found.layer]
        if not isinstance(layer, DirLayer):
            raise ValueError("reading file content needs unpacked layers")
        return layer.host_path(found.parts)

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """A small file's content (``/etc/passwd``), or None when missing or unreadable."""
        found = self.lookup(path)
        if found is None or found.node.kind != "f":
            return None
        layer = self.layers[found.layer]
        if isinstance(layer, DirLayer):
            with open(layer.host_path(found.parts), "rb") as handle:
                return handle.read(limit)
        reader = getattr(layer, "read", None)
        return reader(found.parts) if reader is not None else None

    def listdir(self, parts: tuple[str, ...], floor: int) -> Iterator[tuple[str, Found, int]]:
        """The merged children of the directory ``parts`` (visible down to ``floor``)."""
        seen: set[str] = set()
        for index in range(len(self.layers) - 1, floor - 1, -1):
            layer = self.layers[index]
            if not isinstance(layer, DirLayer):
                raise ValueError("listing a directory needs unpacked layers")
            node = layer.lookup(parts)
            if node is None:
                continue
            if node.kind != "d":
                break
            for name in layer.listdir(parts):
                if name in seen:
                    continue
                seen.add(name)
                child, child_floor = self._child(floor, parts + (name,))
                if child is not None:
                    yield name, child, child_floor
            if node.opaque:
                break

    def floor_of(self, parts: tuple[str, ...]) -> int:
        return self._reresolve(parts)[2]
