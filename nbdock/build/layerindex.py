"""Which layers of the store a build can look into, and how, cheaply.

A layer the store has unpacked is read as a directory. A layer it has not (a COPY layer that no
RUN has used yet) is looked at through an index of its tar entries, built once by reading only
the tar headers and kept in ``<state>/layer-index/<hex>`` — so "is ``/data`` a directory?" never
costs unpacking 200 MB.
"""

from __future__ import annotations

import marshal
import os
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nbdock.build.rootfs import (
    WHITEOUT,
    DirLayer,
    Layer,
    Node,
    RootView,
    TarIndex,
    node_from_stat,
)
from nbdock.image.records import LayerRecord
from nbdock.image.store import ImageStore

_FORMAT = 1
_KINDS = {
    tarfile.REGTYPE: "f", tarfile.AREGTYPE: "f", tarfile.CONTTYPE: "f", tarfile.LNKTYPE: "f",
    tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b",
    tarfile.FIFOTYPE: "p",
}


class BlobIndex(TarIndex):
    """A ``TarIndex`` that can also read a small file's bytes straight from the layer blob.

    ``raw`` holds the saved tuples; a ``Node`` is made only for a path that is looked up (a
    COPY of 10,000 files looks up a handful of them).
    """

    def __init__(self, entries: dict[str, Node], offsets: dict[str, int], blob: Path,
                 raw: dict[str, tuple[Any, ...]] | None = None) -> None:
        super().__init__(entries)
        self.offsets = offsets
        self.blob = blob
        self.raw = raw or {}

    def lookup(self, parts: tuple[str, ...]) -> Node | None:
        key = "/".join(parts)
        node = self.entries.get(key)
        if node is None:
            fields = self.raw.get(key)
            if fields is None:
                return None
            node = self.entries[key] = Node(*fields)
        return node

    def read(self, parts: tuple[str, ...]) -> bytes | None:
        key = "/".join(parts)
        node = self.lookup(parts)
        if node is None or node.kind != "f":
            return None
        offset = self.offsets.get(key)
        if offset is None:  # an index made from a directory: find the member in the tar
            with tarfile.open(self.blob, mode="r:") as tar:
                for info in tar:
                    if info.isreg() and info.name.strip("/").removeprefix("./") == key:
                        handle = tar.extractfile(info)
                        return handle.read() if handle is not None else None
            return None
        with open(self.blob, "rb") as handle:
            handle.seek(offset)
            return handle.read(node.size)


def index_entries(members: Iterable[tuple[str, Node]]) -> dict[str, Node]:
    """Apply a layer's whiteout names and implied parent directories to its raw entries."""
    entries: dict[str, Node] = {}
    for raw, node in members:
        name = raw.strip("/")
        while name.startswith("./"):
            name = name[2:]
        if name in ("", "."):
            continue
        parent, _, base = name.rpartition("/")
        if base == ".wh..wh..opq":
            current = entries.get(parent)
            entries[parent] = Node("d", *(current.mode, current.uid, current.gid)
                                   if current is not None else (0o755, 0, 0), opaque=True)
            name = parent
        elif base.startswith(".wh."):
            name = f"{parent}/{base[4:]}" if parent else base[4:]
            entries[name] = Node(WHITEOUT)
        else:
            previous = entries.get(name)
            if previous is not None and previous.opaque and node.kind == "d":
                node = Node("d", node.mode, node.uid, node.gid, opaque=True)
            entries[name] = node
        while "/" in name:
            name = name.rpartition("/")[0]
            if name in entries:
                break
            entries[name] = Node("d")
    return entries


def index_from_dir(root: Path) -> dict[str, Node]:
    """The index of a layer still in overlay form (a RUN's upper directory): a walk of it is
    much cheaper than parsing the tar made from it."""
    entries: dict[str, Node] = {}

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as scan:
            for item in scan:
                name = prefix + item.name
                node = node_from_stat(item.path, item.stat(follow_symlinks=False))
                entries[name] = node
                if node.kind == "d":
                    walk(item.path, name + "/")

    walk(str(root), "")
    return entries


class LayerIndexes:
    """Layers of ``store`` as ``Layer`` objects for a ``RootView``."""

    def __init__(self, store: ImageStore, state_dir: Path,
                 memo: dict[str, BlobIndex] | None = None) -> None:
        self.store = store
        self.dir = state_dir / "layer-index"
        # Layers never change, so their indexes can live as long as the builder (``memo``).
        self._memo: dict[str, BlobIndex] = memo if memo is not None else {}

    def unpacked_dir(self, layer: LayerRecord) -> Path:
        return self.store.layers_dir / layer.diff_id.removeprefix("sha256:")

    def layer(self, layer: LayerRecord) -> Layer:
        unpacked = self.unpacked_dir(layer)
        if unpacked.is_dir():
            return DirLayer(str(unpacked))
        return self.index(layer)

    def view(self, layers: Sequence[LayerRecord]) -> RootView:
        return RootView([self.layer(layer) for layer in layers])

    def index(self, layer: LayerRecord) -> BlobIndex:
        key = layer.diff_id.removeprefix("sha256:")
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        blob = self.store.blobs.path(layer.digest)
        file = self.dir / key
        try:
            fmt, raw, offsets = marshal.loads(file.read_bytes())
            if fmt != _FORMAT:
                raise ValueError(fmt)
            index = BlobIndex({}, offsets, blob, raw)
        except (OSError, ValueError, EOFError, TypeError):
            entries, offsets = self._scan(blob)
            self.save(key, entries, offsets)
            index = BlobIndex(entries, offsets, blob)
        self._memo[key] = index
        return index

    def save(self, key: str, entries: dict[str, Node], offsets: dict[str, int]) -> None:
        """Keep a layer's index (the COPY step saves the one it built while writing the tar)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        raw = {
            name: (n.kind, n.mode, n.uid, n.gid, n.size, n.link, n.opaque)
            for name, n in entries.items()
        }
        tmp = self.dir / f".{key}.{os.getpid()}.tmp"
        tmp.write_bytes(marshal.dumps((_FORMAT, raw, offsets)))
        os.replace(tmp, self.dir / key)

    @staticmethod
    def _scan(blob: Path) -> tuple[dict[str, Node], dict[str, int]]:
        members: list[tuple[str, Node]] = []
        offsets: dict[str, int] = {}
        with tarfile.open(blob, mode="r:") as tar:
            for info in tar:
                kind = _KINDS.get(info.type, "f")
                if info.type == tarfile.LNKTYPE:
                    target = tar.getmember(info.linkname) if info.linkname else None
                    size = target.size if target is not None else 0
                else:
                    size = info.size
                members.append((info.name, Node(kind, info.mode & 0o7777, info.uid, info.gid,
                                                size, info.linkname if kind == "l" else "")))
                if info.isreg():
                    offsets[info.name.strip("/").removeprefix("./")] = info.offset_data
        return index_entries(members), offsets
