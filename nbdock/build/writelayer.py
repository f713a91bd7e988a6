"""A layer made by the builder itself (COPY, ADD, WORKDIR): a list of entries → a stored layer.

No container is needed: the entries are written as a tar straight from the build context (or
another stage's files, or bytes in memory) into the store. The layer's path index is saved as it
is written, so later steps can look into the layer without unpacking it.

Parent directories that already exist in the image are written with the image's own mode and
owner (a layer entry replaces the directory's metadata in the merged view: writing ``tmp/``
as 0755 would break a 1777 ``/tmp``); missing ones are created as the caller says.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from nbdock.build.layerindex import index_entries
from nbdock.build.layertar import BLOCK, RECORD, header, new_info, store_layer
from nbdock.build.rootfs import Node, RootView
from nbdock.build.session import Session
from nbdock.errors import BuildError
from nbdock.image.records import LayerRecord

_TYPES = {"d": tarfile.DIRTYPE, "f": tarfile.REGTYPE, "l": tarfile.SYMTYPE, "p": tarfile.FIFOTYPE}


@dataclass(frozen=True)
class Entry:
    """One entry to write: ``name`` is the path in the image without the leading slash."""

    name: str
    kind: str  # d, f, l, p
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    source: str | None = None  # host file with the content
    data: bytes | None = None  # or the content itself
    link: str = ""


def parent_entries(view: RootView, parts: tuple[str, ...], *, new_mode: int = 0o755,
                   owner: tuple[int, int] = (0, 0)) -> list[Entry]:
    """Entries for the directories ``parts`` (symlink-free): existing ones as they are in the
    image, missing ones created with ``new_mode`` and ``owner``."""
    out = []
    missing = False
    for i in range(1, len(parts) + 1):
        name = "/".join(parts[:i])
        found = None if missing else view.lookup("/" + name, follow=False)
        if found is not None and found.node.kind == "d":
            node = found.node
            out.append(Entry(name, "d", node.mode, node.uid, node.gid))
        else:
            missing = True
            out.append(Entry(name, "d", new_mode, *owner))
    return out


def _sort_key(entry: Entry) -> list[str]:
    return entry.name.split("/")


def write_layer(session: Session, entries: Iterable[Entry],
                on_progress: Callable[[int], None] | None = None) -> LayerRecord:
    """Store ``entries`` (later duplicates win) as one layer, reproducibly ordered."""
    unique: dict[str, Entry] = {}
    for entry in entries:
        unique[entry.name] = entry
    ordered = sorted(unique.values(), key=_sort_key)
    mtime = session.epoch
    offsets: dict[str, int] = {}

    def write(out: BinaryIO) -> None:
        offset = 0
        for entry in ordered:
            info = new_info(entry.name, _TYPES[entry.kind], entry.mode, entry.uid, entry.gid,
                            mtime)
            info.linkname = entry.link
            if entry.kind == "f":
                info.size = entry.size
            head = header(info)
            out.write(head)
            offset += len(head)
            if entry.kind != "f":
                continue
            offsets[entry.name] = offset
            if entry.data is not None:
                out.write(entry.data)
            else:
                assert entry.source is not None
                _copy_file(entry.source, entry.size, out)
            padding = _padded(entry.size) - entry.size
            out.write(b"\0" * padding)
            offset += entry.size + padding
            if on_progress is not None:
                on_progress(entry.size)
        end = b"\0" * (2 * BLOCK)
        offset += len(end)
        out.write(end + b"\0" * ((RECORD - offset % RECORD) % RECORD))

    layer = store_layer(session.store, write)
    nodes = index_entries(
        (e.name, Node(e.kind, e.mode, e.uid, e.gid, e.size, e.link)) for e in ordered
    )
    session.indexes.save(layer.diff_id.removeprefix("sha256:"), nodes, offsets)
    return layer


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK


_SENDFILE_MIN = 1 << 16


def _copy_file(path: str, size: int, out: BinaryIO) -> None:
    """Exactly ``size`` bytes of ``path`` into ``out``: small files through the buffer, big ones
    with ``sendfile`` (no copy through Python). A file that changed size since it was hashed
    fails the step rather than writing a corrupt tar."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if size < _SENDFILE_MIN:
            data = os.read(fd, size + 1)
            if len(data) != size:
                raise BuildError(f"{path} changed while it was being copied", hint="build again")
            out.write(data)
            return
        out.flush()
        sent = 0
        while sent < size:
            count = os.sendfile(out.fileno(), fd, sent, min(size - sent, 1 << 30))
            if count == 0:
                raise BuildError(f"{path} shrank while it was being copied", hint="build again")
            sent += count
    finally:
        os.close(fd)
