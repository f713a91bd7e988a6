"""The SQLite index of the store: images, tags and layers, for fast lookups and reference counts.

The OCI layout (blobs + ``index.json``) is the content; this database is the index over it.
WAL mode lets a notebook kernel read while the CLI writes; every change is one ``BEGIN
IMMEDIATE`` transaction, so a crash leaves either the old or the new state.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

try:  # what threading.RLock returns, without importing threading (the CLI runs no threads)
    from _thread import RLock
except ImportError:  # pragma: no cover - an interpreter without the C lock
    from threading import RLock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,                 -- sha256 of the config blob
    manifest_digest TEXT NOT NULL,
    manifest_size INTEGER NOT NULL,
    created TEXT NOT NULL,               -- from the config
    size INTEGER NOT NULL,               -- sum of layer blob sizes
    added REAL NOT NULL                  -- when this store first saw it (for listing order)
);
CREATE TABLE IF NOT EXISTS tags (
    canonical TEXT PRIMARY KEY,          -- docker.io/library/busybox:latest
    familiar TEXT NOT NULL,              -- busybox:latest
    repository TEXT NOT NULL,            -- docker.io/library/busybox
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    added REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_by_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS layers (
    diff_id TEXT PRIMARY KEY,
    blob_digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    unpacked INTEGER NOT NULL DEFAULT 0, -- a hint; the directory's existence is the truth
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    diff_id TEXT NOT NULL REFERENCES layers(diff_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_by_diff ON image_layers(diff_id);
"""


_INHERITED: list[sqlite3.Connection] = []


# Rows are NamedTuples, not frozen dataclasses: a frozen dataclass costs ~0.5 ms to define
# (its methods are generated through exec), and every ``nbdock run`` imports this module.
class ImageRow(NamedTuple):
    id: str
    manifest_digest: str
    manifest_size: int
    created: str
    size: int
    added: float


class TagRow(NamedTuple):
    canonical: str
    familiar: str
    repository: str
    image_id: str


class LayerRow(NamedTuple):
    diff_id: str
    blob_digest: str
    size: int
    media_type: str


class IndexDB:
    """One SQLite connection per store object, reused for every lookup and transaction.

    Opening a connection (and setting its pragmas) costs ~0.3 ms; a cached rebuild makes dozens
    of lookups. The connection is shared by the threads of one process under a lock (a notebook
    may drive one client from several threads), and reopened in a forked child, which must not
    use its parent's SQLite handle.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=FULL")
        return db

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._guard:
            if self._db is None or self._pid != os.getpid():
                if self._db is not None:
                    # A forked child never closes its parent's handle (closing a WAL database
                    # may checkpoint it): keep it referenced, unused, for the process' life.
                    _INHERITED.append(self._db)
                self._db = self._open()
                self._pid = os.getpid()
            yield self._db

    def close(self) -> None:
        with self._guard:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _rows(self, sql: str, *args: object) -> list[tuple]:
        with self._connect() as db:
            return db.execute(sql, args).fetchall()

    # -- reads ------------------------------------------------------------------------------

    def image(self, image_id: str) -> ImageRow | None:
        rows = self._rows("SELECT * FROM images WHERE id = ?", image_id)
        return ImageRow(*rows[0]) if rows else None

    def images(self) -> list[ImageRow]:
        return [ImageRow(*r) for r in self._rows("SELECT * FROM images ORDER BY added DESC, id")]

    def ids_with_prefix(self, hex_prefix: str) -> list[str]:
        pattern = "sha256:" + hex_prefix.replace("%", "").replace("_", "") + "%"
        return [r[0] for r in self._rows("SELECT id FROM images WHERE id LIKE ?", pattern)]

    def tag(self, canonical: str) -> TagRow | None:
        rows = self._rows(
            "SELECT canonical, familiar, repository, image_id FROM tags WHERE canonical = ?",
            canonical,
        )
        return TagRow(*rows[0]) if rows else None

    def tags_of(self, image_id: str) -> list[TagRow]:
        sql = (
            "SELECT canonical, familiar, repository, image_id FROM tags WHERE image_id = ? "
            "ORDER BY added, canonical"
        )
        return [TagRow(*r) for r in self._rows(sql, image_id)]

    def all_tags(self) -> list[TagRow]:
        sql = "SELECT canonical, familiar, repository, image_id FROM tags ORDER BY added, canonical"
        return [TagRow(*r) for r in self._rows(sql)]

    def images_in_repository(self, repository: str, manifest_digest: str) -> list[str]:
        sql = (
            "SELECT DISTINCT images.id FROM images JOIN tags ON tags.image_id = images.id "
            "WHERE tags.repository = ? AND images.manifest_digest = ?"
        )
        return [r[0] for r in self._rows(sql, repository, manifest_digest)]

    def layer(self, diff_id: str) -> LayerRow | None:
        rows = self._rows(
            "SELECT diff_id, blob_digest, size, media_type FROM layers WHERE diff_id = ?", diff_id
        )
        return LayerRow(*rows[0]) if rows else None

    def layers(self) -> list[LayerRow]:
        rows = self._rows("SELECT diff_id, blob_digest, size, media_type FROM layers")
        return [LayerRow(*r) for r in rows]

    # -- writes (inside a transaction) --------------------------------------------------------

    @staticmethod
    def add_layer(db: sqlite3.Connection, layer: LayerRow) -> None:
        db.execute(
            "INSERT OR IGNORE INTO layers (diff_id, blob_digest, size, media_type, added) "
            "VALUES (?, ?, ?, ?, ?)",
            (layer.diff_id, layer.blob_digest, layer.size, layer.media_type, time.time()),
        )

    @staticmethod
    def set_unpacked(db: sqlite3.Connection, diff_id: str) -> None:
        db.execute("UPDATE layers SET unpacked = 1 WHERE diff_id = ?", (diff_id,))

    @staticmethod
    def add_image(db: sqlite3.Connection, row: ImageRow, diff_ids: list[str]) -> bool:
        """Insert an image and its layer list; False if it was already there."""
        cur = db.execute(
            "INSERT OR IGNORE INTO images VALUES (?, ?, ?, ?, ?, ?)",
            (row.id, row.manifest_digest, row.manifest_size, row.created, row.size, row.added),
        )
        if cur.rowcount == 0:
            return False
        db.executemany(
            "INSERT INTO image_layers (image_id, position, diff_id) VALUES (?, ?, ?)",
            [(row.id, i, d) for i, d in enumerate(diff_ids)],
        )
        return True

    @staticmethod
    def set_tag(db: sqlite3.Connection, tag: TagRow) -> None:
        db.execute(
            "INSERT INTO tags (canonical, familiar, repository, image_id, added) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(canonical) DO UPDATE SET "
            "image_id = excluded.image_id, added = excluded.added",
            (tag.canonical, tag.familiar, tag.repository, tag.image_id, time.time()),
        )

    @staticmethod
    def remove_tag(db: sqlite3.Connection, canonical: str) -> None:
        db.execute("DELETE FROM tags WHERE canonical = ?", (canonical,))

    @staticmethod
    def remove_image(db: sqlite3.Connection, image_id: str) -> list[LayerRow]:
        """Delete an image; return the layers no other image uses any more (also deleted)."""
        diff_ids = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT diff_id FROM image_layers WHERE image_id = ?", (image_id,)
            )
        ]
        db.execute("DELETE FROM images WHERE id = ?", (image_id,))
        orphans = []
        for diff_id in diff_ids:
            used = db.execute(
                "SELECT 1 FROM image_layers WHERE diff_id = ? LIMIT 1", (diff_id,)
            ).fetchone()
            if used:
                continue
            row = db.execute(
                "SELECT diff_id, blob_digest, size, media_type FROM layers WHERE diff_id = ?",
                (diff_id,),
            ).fetchone()
            db.execute("DELETE FROM layers WHERE diff_id = ?", (diff_id,))
            if row:
                orphans.append(LayerRow(*row))
        return orphans
