"""The build cache: step keys as Docker documents them, and the reason for every miss.

Each step's key chains on its parent's: ``key = sha256(parent key, what the step is)``, where
"what the step is" holds exactly what Docker's cache looks at —

- every instruction: its text after expansion (a changed ``ENV`` value changes its key);
- ``RUN``: also the build arguments in effect (Docker: all RUNs after an ``ARG`` use it as an
  environment variable, so a changed ARG invalidates from its first use, not its declaration);
- ``COPY``/``ADD``: also the digest of the copied files' names, types, modes, owners and
  contents (never their mtimes), or of the stage/image they come from;
- ``FROM``: the id of the base image (and the reproducible epoch).

Because keys chain, a miss rebuilds everything after it, and a failed step leaves every step
before it cached. The index (SQLite, ``<state>/cache.db``) keeps, per key, the step's layer and
enough of its inputs to explain the next miss: the unexpanded and expanded text, the build args
it used, and a manifest of its files.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nbdock.build.events import MissKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    key TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    original TEXT NOT NULL,
    text TEXT NOT NULL,
    args TEXT NOT NULL,
    files TEXT,
    layer TEXT,
    size INTEGER,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_parent ON steps(parent);
CREATE TABLE IF NOT EXISTS manifests (digest TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bases (ref TEXT NOT NULL, image TEXT NOT NULL, key TEXT NOT NULL,
                                  used REAL NOT NULL, PRIMARY KEY (ref, image));
CREATE TABLE IF NOT EXISTS images (key TEXT PRIMARY KEY, image TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (parent TEXT NOT NULL, original TEXT NOT NULL,
                                     text TEXT NOT NULL, args TEXT NOT NULL, created REAL NOT NULL,
                                     PRIMARY KEY (parent, text));
"""


@dataclass(frozen=True)
class StepInputs:
    """What decides a step's cache key (and explains a miss)."""

    original: str  # the instruction as written (unexpanded)
    text: str  # the instruction after expansion, as the key sees it
    args: Mapping[str, str] = field(default_factory=dict)  # build args in effect / used
    files: str | None = None  # digest of the copied files (COPY/ADD)
    # name → short content id (or a function computing it on demand), to explain misses
    manifest: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None

    def file_manifest(self) -> Mapping[str, str] | None:
        return self.manifest() if callable(self.manifest) else self.manifest


def chain_key(parent: str, inputs: StepInputs) -> str:
    """``sha256(parent, text, args, files)``: the documented cache rule, as a digest."""
    payload = json.dumps(
        [parent, inputs.text, sorted(inputs.args.items()), inputs.files],
        separators=(",", ":"), ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(payload.encode("utf-8", "surrogateescape")).hexdigest()


def base_key(image_id: str, epoch: int, platform: str) -> str:
    """The key a stage starts from: its base image (or ``scratch``), the epoch, the platform."""
    payload = json.dumps(["FROM", image_id, epoch, platform], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class CachedStep:
    """A cache hit: the layer the step made (None: it made no layer) and its size."""

    key: str
    layer: str | None
    size: int | None


@dataclass(frozen=True)
class Miss:
    kind: MissKind
    reason: str


@dataclass(frozen=True)
class _Row:
    key: str
    original: str
    text: str
    args: dict[str, str]
    files: str | None
    failed: bool = False


class CacheIndex:
    """The SQLite index of built steps (one per state root)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- steps --------------------------------------------------------------------------------

    def lookup(self, key: str) -> CachedStep | None:
        row = self.db.execute("SELECT layer, size FROM steps WHERE key = ?", (key,)).fetchone()
        return None if row is None else CachedStep(key, row[0], row[1])

    def record(self, key: str, parent: str, inputs: StepInputs, layer: str | None,
               size: int | None) -> None:
        """Remember a built step (and its files' manifest, to explain the next change)."""
        manifest_blob = None
        manifest = inputs.file_manifest() if inputs.files is not None else None
        if manifest is not None:
            manifest_blob = zlib.compress(
                json.dumps(dict(manifest), separators=(",", ":")).encode(), 1
            )
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, parent, inputs.original, inputs.text,
                 json.dumps(dict(inputs.args), sort_keys=True), inputs.files, layer, size,
                 time.time()),
            )
            if manifest_blob is not None:
                db.execute("INSERT OR IGNORE INTO manifests VALUES (?, ?)",
                           (inputs.files, manifest_blob))

    def record_failure(self, parent: str, inputs: StepInputs) -> None:
        """Remember a step that failed, so that its fixed version can say what changed."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                       (parent, inputs.original, inputs.text,
                        json.dumps(dict(inputs.args), sort_keys=True), time.time()))

    def forget(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM steps WHERE key = ?", (key,))

    def _manifest(self, digest: str) -> dict[str, str] | None:
        row = self.db.execute("SELECT data FROM manifests WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            return None
        try:
            data: dict[str, str] = json.loads(zlib.decompress(row[0]))
        except (zlib.error, ValueError):
            return None
        return data

    def _siblings(self, parent: str) -> list[_Row]:
        rows = self.db.execute(
            "SELECT key, original, text, args, files, created FROM steps WHERE parent = ? "
            "ORDER BY created DESC LIMIT 50",
            (parent,),
        ).fetchall()
        found = [(r[5], _Row(r[0], r[1], r[2], json.loads(r[3]), r[4])) for r in rows]
        failed = self.db.execute(
            "SELECT original, text, args, created FROM failures WHERE parent = ? "
            "ORDER BY created DESC LIMIT 10", (parent,),
        ).fetchall()
        found += [(r[3], _Row("", r[0], r[1], json.loads(r[2]), None, True)) for r in failed]
        return [row for _, row in sorted(found, key=lambda item: -item[0])]

    # -- bases and images ----------------------------------------------------------------------

    def note_base(self, ref: str, image_id: str, key: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO bases VALUES (?, ?, ?, ?)",
                       (ref, image_id, key, time.time()))

    def previous_base(self, ref: str, image_id: str) -> str | None:
        """The image ``ref`` named at the last build that used another image, if any."""
        row = self.db.execute(
            "SELECT image FROM bases WHERE ref = ? AND image != ? ORDER BY used DESC LIMIT 1",
            (ref, image_id),
        ).fetchone()
        return None if row is None else str(row[0])

    def base_changed(self, key: str) -> tuple[str, str] | None:
        """If ``key`` starts a stage whose base reference pointed at another image before:
        (reference, previous image id)."""
        row = self.db.execute("SELECT ref, image FROM bases WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        previous = self.previous_base(row[0], row[1])
        if previous is None:
            return None
        has_children = self.db.execute(
            "SELECT 1 FROM bases b JOIN steps s ON s.parent = b.key WHERE b.ref = ? "
            "AND b.image = ? LIMIT 1", (row[0], previous),
        ).fetchone()
        return (row[0], previous) if has_children else None

    def image_for(self, key: str) -> str | None:
        row = self.db.execute("SELECT image FROM images WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def remember_image(self, key: str, image_id: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO images VALUES (?, ?)", (key, image_id))

    # -- explaining misses -----------------------------------------------------------------------

    def explain(self, parent: str, inputs: StepInputs, *, parent_rebuilt: bool,
                stage_start: bool) -> Miss:
        """Why ``inputs`` under ``parent`` is not in the cache, in a learner's words."""
        if parent_rebuilt:
            return Miss("parent", "an earlier step was rebuilt")
        siblings = self._siblings(parent)
        same = [row for row in siblings if row.original == inputs.original]
        if same:
            return self._compare(same[0], inputs)
        if siblings:
            was = siblings[0]
            failed = ", which failed" if was.failed else ""
            return Miss("instruction", f"instruction changed (was: {_short(was.original)}{failed})")
        if stage_start:
            changed = self.base_changed(parent)
            if changed is not None:
                ref, previous = changed
                return Miss("base", f"base image {ref} changed (was {previous[:19]})")
        return Miss("new", "not in the cache (first build of this step)")

    def _compare(self, old: _Row, inputs: StepInputs) -> Miss:
        changed_args = sorted(
            name for name in set(old.args) | set(inputs.args)
            if old.args.get(name) != inputs.args.get(name)
        )
        if changed_args:
            names = ", ".join(changed_args)
            plural = "s" if len(changed_args) > 1 else ""
            return Miss("build-arg", f"build arg{plural} {names} changed")
        if old.failed:
            return Miss("new", "not in the cache: the last attempt failed")
        if old.text != inputs.text:
            return Miss("instruction", f"instruction changed after expansion "
                                       f"(was: {_short(old.text)})")
        if old.files != inputs.files:
            previous = self._manifest(old.files) if old.files else None
            return Miss("files", describe_file_changes(previous, inputs.file_manifest()))
        return Miss("new", "not in the cache")


def describe_file_changes(
    old: Mapping[str, str] | None, new: Mapping[str, str] | None, limit: int = 3
) -> str:
    """"files changed: a.txt, b.txt (+3 more)" from two manifests (name → content id)."""
    if old is None or new is None:
        return "files changed"
    changed = sorted(name for name in new if name in old and old[name] != new[name])
    added = sorted(name for name in new if name not in old)
    removed = sorted(name for name in old if name not in new)
    parts = []
    for label, names in (("changed", changed), ("added", added), ("removed", removed)):
        if not names:
            continue
        shown = ", ".join(names[:limit])
        more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
        noun = "file" if len(names) == 1 else "files"
        parts.append(f"{noun} {label}: {shown}{more}")
    return "; ".join(parts) or "file metadata changed"


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
