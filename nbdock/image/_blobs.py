"""Content-addressed blobs in an OCI image layout: ``blobs/sha256/<hex>``.

A blob is written to the temp area, fsynced, hashed while written, compared with the digest the
caller expects (if any) and only then renamed to its name, so a crash or a corrupt download never
leaves a blob whose name lies. Readers hash what they read and check at the end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from nbdock.errors import DigestMismatch, ImageStoreError
from nbdock.image._fsutil import TempArea, discard, fsync_dir, replace_with_bytes
from nbdock.image.digest import CHUNK, SHA256_PREFIX, HashingReader, hex_of, sha256_digest

_THREADED_SYNC_MIN = 8 << 20


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
        import hashlib  # not at import: reading small blobs needs no OpenSSL (see digest.py)

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
        return self.write_many([data])[0]

    def write_many(self, documents: Sequence[bytes]) -> list[tuple[str, int]]:
        """Store small blobs (a config and its manifest): each file fsynced, then renamed, and
        the directory fsynced once for all of them."""
        out = []
        renamed = False
        for data in documents:
            digest = sha256_digest(data)
            out.append((digest, len(data)))
            final = self.path(digest)
            if final.is_file() and final.stat().st_size == len(data):
                continue
            replace_with_bytes(final, data, self._temp, "blob")
            renamed = True
        if renamed:
            fsync_dir(self.dir)
        return out

    def adopt(self, path: Path, expected: str | None = None) -> tuple[str, int]:
        """Move a finished file into the store under its digest; return ``(digest, size)``.

        The file is fsynced and hashed where it lies, then renamed (no copy); it must be a
        regular file on the store's file system, best in the store's temp area (another file
        system costs a copy). The file is consumed whether or not this succeeds.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise ImageStoreError(f"cannot store {path}: {exc.strerror}") from exc
        try:
            with open(fd, "rb", closefd=True) as handle:
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise ImageStoreError(f"cannot store {path}: not a regular file")
                digest = SHA256_PREFIX + _fsync_and_hash(handle, st.st_size).hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(expected, digest)
            final = self.path(digest)
            if final.is_file() and final.stat().st_size == st.st_size:
                discard(path)  # already stored: content addressing makes this a no-op
                return digest, st.st_size
            os.chmod(path, 0o644)
            try:
                os.replace(path, final)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                with open(path, "rb") as source:
                    return self.write_stream(source, digest)
            moved = os.stat(final)
            if (moved.st_dev, moved.st_ino) != (st.st_dev, st.st_ino):
                discard(final)  # the name was swapped under us: never keep unhashed content
                raise ImageStoreError(f"{path} changed while it was being stored")
            fsync_dir(self.dir)
        finally:
            discard(path)
        return digest, st.st_size

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


def _fsync_and_hash(handle: BinaryIO, size: int) -> Any:
    """Hash a file while another thread flushes it to disk: both release the GIL, and for a
    200 MB layer each takes ~0.1 s, so doing them side by side halves the wait. Small files
    are not worth a thread."""
    import hashlib

    if size < _THREADED_SYNC_MIN:
        os.fsync(handle.fileno())
        return hashlib.file_digest(handle, "sha256")  # type: ignore[arg-type]
    import threading

    failure: list[OSError] = []

    def flush() -> None:
        try:
            os.fsync(handle.fileno())
        except OSError as exc:
            failure.append(exc)

    flusher = threading.Thread(target=flush, name="nbdock-blob-fsync", daemon=True)
    flusher.start()
    try:
        hasher = hashlib.file_digest(handle, "sha256")  # type: ignore[arg-type]
    finally:
        flusher.join()
    if failure:
        raise failure[0]
    return hasher
