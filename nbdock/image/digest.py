"""Content digests: the names blobs are stored under, and the readers that prove them.

Every blob in the store is named ``sha256:<64 lowercase hex>``. A name is only trusted once the
bytes have been hashed, so reading and writing go through the small wrappers here, which hash
while data streams past and compare at the end (the check cannot be forgotten by a caller that
simply reads to EOF).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, BinaryIO

from nbdock.errors import DigestMismatch, ImageStoreError

if TYPE_CHECKING:
    from collections.abc import Callable

# Python's own sha256 (a built-in C module) for small documents: ``hashlib`` loads OpenSSL,
# ~2 ms of every ``nbdock run``, which hashes only a config and a manifest. OpenSSL's is faster
# on big inputs, so streams and large blobs still use ``hashlib``.
_builtin_sha256: Callable[[bytes], Any] | None
try:
    from _sha2 import sha256 as _builtin_sha256  # type: ignore  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _builtin_sha256  # type: ignore  # Python 3.11
    except ImportError:
        _builtin_sha256 = None
_SMALL = 1 << 16

SHA256_PREFIX = "sha256:"
SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    if _builtin_sha256 is not None and len(data) <= _SMALL:
        return SHA256_PREFIX + _builtin_sha256(data).hexdigest()
    import hashlib

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
        import hashlib  # layers: OpenSSL's sha256 is the fast one

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
