"""Reading tar archives handed to the store: plain, gzip, bzip2 or xz, from a path or a stream.

``docker import`` accepts a compressed rootfs tarball, and registries serve gzip layers, but the
store keeps every layer as a plain tar (so its digest is its diff_id). ``open_tar_stream`` sniffs
the first bytes — never the file name — and returns a stream of plain tar bytes; it works on
pipes too, because the sniffed bytes are replayed rather than sought back to.

Docker-archive (``docker save``) and OCI-archive import/export will live here as well.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from nbdock.errors import ImageStoreError

Compression = Literal["gzip", "bzip2", "xz", "zstd"]

_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_SNIFF = 6


def detect_compression(head: bytes) -> Compression | None:
    """The compression a stream starting with ``head`` uses, or None for a plain tar."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


class _Replay(io.RawIOBase):
    """A read-only stream that yields ``head`` and then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_exactly(raw: BinaryIO, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        data = raw.read(n - len(chunks))
        if not data:
            break
        chunks += data
    return chunks


def decompressed(raw: BinaryIO) -> BinaryIO:
    """Wrap ``raw`` so that reading it yields plain tar bytes whatever the compression."""
    head = _read_exactly(raw, _SNIFF)
    replay = io.BufferedReader(_Replay(head, raw))
    kind = detect_compression(head)
    if kind is None:
        return replay
    if kind == "gzip":
        return gzip.GzipFile(fileobj=replay, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(replay, mode="rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(replay, mode="rb")  # type: ignore[return-value]
    raise ImageStoreError(
        "zstd-compressed tar archives are not supported yet: decompress first (zstd -d)"
    )


@contextlib.contextmanager
def open_tar_stream(source: Path | str | BinaryIO) -> Iterator[BinaryIO]:
    """Yield a plain-tar byte stream for a path or an open binary file object.

    A file object is read from its current position and left open for the caller to close.
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as raw:
            yield decompressed(raw)
    else:
        yield decompressed(source)
