"""Unpacked layers: ``layers/<diff_id hex>/``, the overlayfs lower dirs, made once per layer.

A layer is extracted into the temp area, verified against its digest, flushed, and only then
renamed to its name — so a directory under ``layers/`` is always a whole, verified layer, and
one being deleted is renamed away first (a crash mid-delete leaves nothing that looks unpacked).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from nbdock.image._blobs import BlobStore
from nbdock.image._fsutil import TempArea, discard, syncfs
from nbdock.image.digest import hex_of
from nbdock.image.records import LayerRecord


class LayerDirs:
    def __init__(self, path: Path, temp: TempArea, blobs: BlobStore) -> None:
        self.path = path
        path.mkdir(exist_ok=True)
        self._temp = temp
        self._blobs = blobs

    def unpack(self, layer: LayerRecord) -> tuple[Path, bool]:
        """The layer's directory, and whether this call extracted it."""
        final = self.path / hex_of(layer.diff_id)
        if final.is_dir():
            return final, False
        from nbdock.image.archive import decompressed
        from nbdock.image.layers import extract_layer

        work = self._temp.make_dir("layer")
        try:
            os.chmod(work, 0o755)  # a tar without a "./" entry keeps this as the layer root's mode
            with self._blobs.reader(layer.digest) as reader:
                try:
                    extract_layer(decompressed(reader), work, mode="overlay")  # type: ignore[arg-type]
                except Exception:
                    reader.verify(layer.digest)  # a corrupt blob explains a broken tar best
                    raise
                reader.verify(layer.digest)
            syncfs(work)
            try:
                os.rename(work, final)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                    raise
                discard(work)  # another process unpacked it first
        except BaseException:
            discard(work)
            raise
        return final, True

    def discard(self, diff_id: str) -> None:
        final = self.path / hex_of(diff_id)
        trash = self._temp.name("trash")
        try:
            os.rename(final, trash)
        except FileNotFoundError:
            return
        discard(trash)
