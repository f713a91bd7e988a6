"""Content digests: the names blobs are stored under, and the readers that prove them.

Every blob in the store is named ``sha256:<64 lowercase hex>``. A name is only trusted once the
bytes have been hashed, so reading and writing go through the small wrappers here, which hash
while data streams past and compare at the end (the check cannot be forgotten by a caller that
simply reads to EOF).
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from nbdock.errors import DigestMismatch, ImageStoreError

SHA256_PREFIX = "sha256:"
SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return SHA256_PREFIX + hashlib.sha256(data).hexdigest()


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and SHA256_RE.match(value) is not None


def require_sha256(value: object, what: str = "digest") -> str:
    """Return ``value`` if it is a well-formed sha256 digest, else raise ImageStoreError.

    The store only ever names blobs by sha256, so anything else it reads is corrupt or hostile
    (a digest like ``sha256:../../etc`` must never become a path).
    """
    if not is_sha256(value):
        raise ImageStoreError(f"{what} {value!r} is not of the form sha256:<64 lowercase hex>")
    assert isinstance(value, str)
    return value


def hex_of(digest: str) -> str:
    """The 64 hex characters of a sha256 digest (validated, so safe to use as a file name)."""
    return require_sha256(digest)[len(SHA256_PREFIX) :]


class HashingReader:
    """Wraps a binary stream; hashes and counts every byte read through it.

    ``verify(expected)`` drains what is left (tar readers stop before the trailing padding) and
    raises DigestMismatch unless the whole stream hashed to ``expected``.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return SHA256_PREFIX + self._hash.hexdigest()

    def verify(self, expected: str) -> None:
        self.drain()
        if self.digest != expected:
            raise DigestMismatch(expected, self.digest)
