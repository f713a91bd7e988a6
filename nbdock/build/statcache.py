"""The stat cache: an unchanged build context is walked, never re-read.

Hashing a context is the slow part of a rebuild (a 200 MB file takes a fraction of a second per
read); stat-ing it is cheap. So, like git's index and BuildKit's content hash cache, we remember
for each file the stat fields that change whenever its content can have changed — size,
``mtime_ns``, ``ctime_ns``, inode and mode — next to the content digest, and trust the digest as
long as they are all the same.

``ctime`` matters because anyone can set ``mtime`` back (``touch -d``, ``tar -x``), while the
kernel sets ``ctime`` to "now" on every write, chmod, chown or rename. One race is left: a file
written twice within one timestamp tick after we hashed it keeps the same stat fields. As git
does with "racily clean" entries, we do not remember a digest whose file changed less than
``RACY_NS`` before we hashed it; such a file is simply hashed again next time.

Per directory, the stat fields of all its files are kept too, with the digest of their part of
the tree (``treehash``): when none changed, the directory costs a ``scandir`` and its stats.
One cache file per context directory (``<state>/statcache/<digest of its path>``), in
``marshal`` format: loading 10,000 entries takes a few milliseconds.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import time
from pathlib import Path
from typing import Any

RACY_NS = 1_000_000_000
_FORMAT = 3

# (size, mtime_ns, ctime_ns, ino, mode, hex digest)
Entry = tuple[int, int, int, int, int, str]


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


def file_digest(path: str) -> str:
    """The sha256 of a file's content, in hex."""
    with open(path, "rb", buffering=0) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class StatCache:
    """Content digests of one context directory's files.

    ``dirs`` maps a directory (relative to the context) to the record of its non-directory
    children: their stat fields (``(name, size, mtime_ns, ctime_ns, ino, mode, uid, gid)``,
    sorted by name — the *signature*), the digest of their part of the tree, and each one's
    content (file digest, symlink target). ``files`` holds single files hashed on their own.
    """

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.files: dict[str, Entry] = {}
        self.dirs: dict[str, tuple[tuple[tuple[Any, ...], ...], str, tuple[str, ...]]] = {}
        self._by_name: dict[str, dict[str, tuple[tuple[Any, ...], str]]] = {}
        self.racy = 0  # digests computed but not trusted for next time (see RACY_NS)
        self.dirty = False
        self.hashed_files = 0
        self.hashed_bytes = 0
        if file is not None:
            self._load(file)

    @classmethod
    def for_context(cls, state_dir: Path, context: Path) -> StatCache:
        name = hashlib.sha256(os.fsencode(os.path.realpath(context))).hexdigest()[:32]
        return cls(state_dir / "statcache" / name)

    def _load(self, file: Path) -> None:
        try:
            data = marshal.loads(file.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(data, tuple) and len(data) == 3 and data[0] == _FORMAT:
            self.files, self.dirs = data[1], data[2]

    # -- hashing ---------------------------------------------------------------------------

    def hash_file(self, path: str, st: os.stat_result) -> tuple[str, bool]:
        """(content digest, whether it may be trusted next time: not changed "just now")."""
        before = time.time_ns()
        digest = file_digest(path)
        self.hashed_files += 1
        self.hashed_bytes += st.st_size
        trusted = st.st_ctime_ns < before - RACY_NS
        if not trusted:
            self.racy += 1
        return digest, trusted

    def known_content(self, directory: str, signature: tuple[Any, ...]) -> str | None:
        """The content recorded for a child of ``directory`` whose stat fields are unchanged."""
        names = self._by_name.get(directory)
        if names is None:
            record = self.dirs.get(directory)
            names = {} if record is None else {
                sig[0]: (sig, content) for sig, content in zip(record[0], record[2], strict=True)
            }
            self._by_name[directory] = names
        known = names.get(signature[0])
        return known[1] if known is not None and known[0] == signature else None

    def digest(self, rel: str, path: str, st: os.stat_result) -> str:
        """The content digest of the regular file ``path`` (``rel`` in the context)."""
        key = _key(st)
        known = self.files.get(rel)
        if known is not None and known[:5] == key:
            return known[5]
        directory, _, name = rel.rpartition("/")
        signature = (name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode,
                     st.st_uid, st.st_gid)
        content = self.known_content(directory, signature)
        if content is not None:
            return content
        digest, trusted = self.hash_file(path, st)
        if trusted:
            self.files[rel] = (*key, digest)
            self.dirty = True
        elif known is not None:
            del self.files[rel]
            self.dirty = True
        return digest

    def remember_dir(self, rel: str, signature: tuple[tuple[Any, ...], ...], block: str,
                     contents: tuple[str, ...]) -> None:
        """Keep a directory's record (only when all its files' digests were trusted)."""
        self.dirs[rel] = (signature, block, contents)
        self._by_name.pop(rel, None)
        self.dirty = True

    def save(self) -> None:
        """Write the cache back if it learnt anything (atomically: a reader never sees half)."""
        if not self.dirty or self.file is None:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps((_FORMAT, self.files, self.dirs)))
        os.replace(tmp, self.file)
        self.dirty = False
