"""Writing layer tars the reproducible way, straight into the store.

Every entry is normalised like the store's own diffs (``nbdock.image.difftar``): PAX format,
numeric owners with empty user/group names, mtimes clamped to the build's epoch
(``SOURCE_DATE_EPOCH``, else 0), entries in the order the writer gives (callers sort them).
So the same inputs give the same bytes, the same diff_id and — with the rest of the config
normalised — the same image id, in any store on any machine.

``store_layer`` has a tar writer write into a file in the store's temp area and hands the
finished file to ``ImageStore.add_layer_from_file``, which hashes it and renames it into place.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import BinaryIO

from nbdock.image.records import LayerRecord
from nbdock.image.store import ImageStore
from nbdock.image.tarheader import BLOCK, header

__all__ = ["BLOCK", "RECORD", "header", "new_info", "open_tar", "store_layer"]

_COPY_BUFFER = 1 << 20
RECORD = 20 * BLOCK  # tarfile pads archives to whole records; so do we, for identical bytes


def new_info(name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode & 0o7777
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = mtime
    return info


def open_tar(out: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(  # noqa: SIM115 - the caller closes it
        fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=_COPY_BUFFER,
        bufsize=_COPY_BUFFER,  # tarfile's stream re-slices its buffer per 10 KiB record
    )


def store_layer(store: ImageStore, write: Callable[[BinaryIO], None]) -> LayerRecord:
    """Run ``write(stream)`` (it writes a whole tar) and store what it wrote as a layer.

    The tar goes to a file in the store's temp area, which the store then hashes and renames
    into place: big file data moves by ``sendfile`` and is never piped through Python, and the
    store skips re-parsing the headers (``trusted``), since nbdock wrote them.
    """
    path = store.temp_path("layer")
    try:
        with open(path, "xb", buffering=_COPY_BUFFER) as out:
            write(out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return store.add_layer_from_file(path, trusted=True)
