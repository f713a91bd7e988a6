"""Content-addressed blobs in an OCI image layout: ``blobs/sha256/<hex>``.

A blob is written to the temp area, fsynced, hashed while written, compared with the digest the
caller expects (if any) and only then renamed to its name, so a crash or a corrupt download never
leaves a blob whose name lies. Readers hash what they read and check at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from nbdock.errors import DigestMismatch, ImageStoreError
from nbdock.image._fsutil import TempArea, discard, fsync_dir
from nbdock.image.digest import CHUNK, SHA256_PREFIX, HashingReader, hex_of, sha256_digest


class BlobStore:
    def __init__(self, layout_root: Path, temp: TempArea) -> None:
        self.dir = layout_root / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._temp = temp

    def path(self, digest: str) -> Path:
        return self.dir / hex_of(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def write_stream(self, stream: BinaryIO, expected: str | None = None) -> tuple[str, int]:
        """Store what ``stream`` yields; return ``(digest, size)``. DigestMismatch if unexpected."""
        tmp = self._temp.name("blob")
        hasher = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = SHA256_PREFIX + hasher.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(expected, digest)
            final = self.path(digest)
            if final.is_file() and final.stat().st_size == size:
                discard(tmp)  # already stored: content addressing makes this a no-op
            else:
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
                fsync_dir(self.dir)
        except BaseException:
            discard(tmp)
            raise
        return digest, size

    def write_bytes(self, data: bytes, expected: str | None = None) -> tuple[str, int]:
        digest = sha256_digest(data)
        if expected is not None and digest != expected:
            raise DigestMismatch(expected, digest)
        final = self.path(digest)
        if final.is_file() and final.stat().st_size == len(data):
            return digest, len(data)
        tmp = self._temp.name("blob")
        try:
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except BaseException:
            discard(tmp)
            raise
        fsync_dir(self.dir)
        return digest, len(data)

    def read_bytes(self, digest: str) -> bytes:
        """The verified content of a (small) blob."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise ImageStoreError(f"blob {digest} is missing from the store") from exc
        actual = sha256_digest(data)
        if actual != digest:
            raise DigestMismatch(digest, actual)
        return data

    @contextlib.contextmanager
    def reader(self, digest: str) -> Iterator[HashingReader]:
        """A hashing reader over a blob; call ``verify(digest)`` on it after consuming it."""
        try:
            raw = open(self.path(digest), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise ImageStoreError(f"blob {digest} is missing from the store") from exc
        with raw:
            yield HashingReader(raw)

    def delete(self, digest: str) -> None:
        discard(self.path(digest))

    def all_digests(self) -> list[str]:
        return sorted(SHA256_PREFIX + p.name for p in self.dir.iterdir() if len(p.name) == 64)
