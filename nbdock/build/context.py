"""The build context: the directory COPY and ADD read from, filtered by ``.dockerignore``.

A COPY source is resolved the way BuildKit resolves it: the path is cleaned and made relative to
the context root (``/app``, ``./app`` and ``app`` are one path; ``..`` cannot leave the root);
a path with wildcards is matched one component at a time (Go's ``filepath.Glob``) and may match
nothing; a plain path must exist. A source that is a symlink is followed, inside the context.
Files excluded by ``.dockerignore`` are not part of the context at all.

Every file met is described by a ``FileEntry`` whose content digest comes from the stat cache,
so a rebuild of an unchanged context stats files but reads none. The cache key of a COPY is the
digest of its entries' names, types, modes, owners and contents — never their mtimes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from nbdock.build.globs import has_wildcards, match_component, unescape
from nbdock.build.statcache import StatCache
from nbdock.build.treehash import child_line, digest_entries, dir_digest, files_block
from nbdock.dockerfile import DockerIgnore
from nbdock.dockerfile.dockerignore import go_clean

_MAX_LINKS = 40
_CONTENT_KINDS = frozenset({stat.S_IFREG, stat.S_IFLNK, stat.S_IFIFO})


class FileEntry(NamedTuple):
    """One file, directory or symlink of a COPY source.

    ``rel`` is the path below the copied source (``""`` for the source itself), ``path`` the
    host path to read. ``digest`` is the sha256 of a regular file's content (empty otherwise).
    A named tuple, not a dataclass: a context of 10,000 files makes 10,000 of these per build.
    """

    rel: str
    path: str
    kind: str  # "f" file, "d" directory, "l" symlink, "p" fifo
    mode: int  # permission bits (and setuid/setgid/sticky)
    uid: int
    gid: int
    size: int
    link: str = ""
    digest: str = ""


class Selected:
    """A matched source: its name as the Dockerfile matched it, and what is there.

    Its entries (``FileEntry``, top first) are collected on first use: a cache hit needs only
    ``digest()``, which the context computes from its cached walk without building them.
    """

    def __init__(self, name: str, entries: Sequence[FileEntry] | None = None, *,
                 loader: Callable[[], list[FileEntry]] | None = None,
                 digester: Callable[[], str] | None = None, kind: str = "") -> None:
        self.name = name
        self._entries = tuple(entries) if entries is not None else None
        self._loader = loader
        self._digester = digester
        self._kind = kind
        self.keep_from = 0  # COPY --parents: where the kept part of ``name`` starts (after /./)

    @property
    def entries(self) -> tuple[FileEntry, ...]:
        if self._entries is None:
            assert self._loader is not None
            self._entries = tuple(self._loader())
        return self._entries

    @property
    def is_dir(self) -> bool:
        return (self._kind or self.entries[0].kind) == "d"

    def digest(self) -> str:
        """The tree digest of this source (names, types, modes, owners, contents)."""
        if self._digester is not None:
            return self._digester()
        return digest_entries(self.entries)


class SourceNotFound(Exception):
    """A plain (wildcard-free) source path that is not in the context."""

    def __init__(self, path: str, ignored: bool) -> None:
        super().__init__(path)
        self.path = path
        self.ignored = ignored


def clean_source(path: str) -> str:
    """A source as a clean path relative to the root (``""`` is the root itself)."""
    cleaned = go_clean("/" + path)
    return cleaned.lstrip("/")


class BuildContext:
    """A context directory, its ``.dockerignore`` and the stat cache that spares re-reading it."""

    def __init__(self, root: Path, ignore: DockerIgnore, statcache: StatCache) -> None:
        self.root = Path(root)
        self.root_str = os.path.realpath(self.root)
        self.ignore = ignore
        self.statcache = statcache
        self.files_seen = 0
        self.bytes_seen = 0
        self.seconds = 0.0  # time spent walking and hashing

    # -- resolving sources -------------------------------------------------------------------

    def ignored(self, rel: str) -> bool:
        return bool(self.ignore) and rel != "" and self.ignore.matches(rel)

    def select(self, source: str) -> list[Selected]:
        """The entries a COPY source names: [] for a wildcard matching nothing."""
        rel = clean_source(source)
        if not has_wildcards(rel):
            return [self._select_one(unescape(rel))]
        return [self._select_one(match) for match in self._glob(rel)]

    def _select_one(self, rel: str) -> Selected:
        if self.ignored(rel):
            raise SourceNotFound(rel, ignored=True)
        real = self._follow(rel)
        if real is None:
            raise SourceNotFound(rel, ignored=False)
        kind = "d" if os.path.isdir(self._host(real)) else "f"
        return Selected(rel, loader=lambda: self.collect(real),
                        digester=lambda: self.tree_digest(real), kind=kind)

    def _glob(self, pattern: str) -> list[str]:
        matches = [""]
        for component in pattern.split("/"):
            found: list[str] = []
            for base in matches:
                if not has_wildcards(component):
                    candidate = _join(base, unescape(component))
                    if os.path.lexists(self._host(candidate)):
                        found.append(candidate)
                    continue
                directory = self._follow(base) if base else ""
                if directory is None or not os.path.isdir(self._host(directory)):
                    continue
                for name in sorted(os.listdir(self._host(directory))):
                    if match_component(component, name):
                        found.append(_join(base, name))
            matches = found
        return [m for m in matches if not self.ignored(m)]

    def _host(self, rel: str) -> str:
        return os.path.join(self.root_str, rel) if rel else self.root_str

    def _follow(self, rel: str) -> str | None:
        """``rel`` with every symlink resolved inside the context root; None if missing."""
        parts = [p for p in rel.split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = os.path.join(self.root_str, *done, part)
            try:
                st = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_LINKS:
                    return None
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            done.append(part)
        return "/".join(done)

    # -- walking and hashing -----------------------------------------------------------------

    def collect(self, rel: str) -> list[FileEntry]:
        """The entry at ``rel`` (already symlink-free) and, for a directory, all below it."""
        started = time.monotonic()
        try:
            return self._collect(rel)
        finally:
            self.seconds += time.monotonic() - started

    def _collect(self, rel: str) -> list[FileEntry]:
        path = self._host(rel)
        st = os.lstat(path)
        top = self._entry("", path, rel, st)
        out = [top]
        if top.kind == "d":
            self._walk(path, rel, "", out)
        return out

    def _entry(self, sub: str, path: str, ctx_rel: str, st: os.stat_result) -> FileEntry:
        mode = st.st_mode
        self.files_seen += 1
        if stat.S_ISREG(mode):
            self.bytes_seen += st.st_size
            digest = self.statcache.digest(ctx_rel, path, st)
            return FileEntry(sub, path, "f", stat.S_IMODE(mode), st.st_uid, st.st_gid,
                             st.st_size, digest=digest)
        if stat.S_ISDIR(mode):
            return FileEntry(sub, path, "d", stat.S_IMODE(mode), st.st_uid, st.st_gid, 0)
        if stat.S_ISLNK(mode):
            return FileEntry(sub, path, "l", stat.S_IMODE(mode), st.st_uid, st.st_gid, 0,
                             link=os.readlink(path))
        return FileEntry(sub, path, "p", stat.S_IMODE(mode), st.st_uid, st.st_gid, 0)

    def _walk(self, directory: str, ctx_rel: str, sub: str, out: list[FileEntry]) -> None:
        with os.scandir(directory) as scan:
            items = sorted(scan, key=lambda e: e.name)
        ignore = self.ignore if self.ignore else None
        digest = self.statcache.digest
        ctx_prefix = ctx_rel + "/" if ctx_rel else ""
        sub_prefix = sub + "/" if sub else ""
        for item in items:
            child_ctx = ctx_prefix + item.name
            child_sub = sub_prefix + item.name
            st = item.stat(follow_symlinks=False)
            mode = st.st_mode
            if ignore is not None and ignore.matches(child_ctx):
                if stat.S_ISDIR(mode) and not ignore.can_skip_dir(child_ctx):
                    # Excluded, but an exception may re-include something below: keep the
                    # directory only if it ends up with content.
                    mark = len(out)
                    out.append(self._entry(child_sub, item.path, child_ctx, st))
                    self._walk(item.path, child_ctx, child_sub, out)
                    if len(out) == mark + 1:
                        out.pop()
                continue
            if stat.S_ISREG(mode):  # the common case, inlined: 10,000 files per build
                self.files_seen += 1
                self.bytes_seen += st.st_size
                out.append(FileEntry(child_sub, item.path, "f", mode & 0o7777, st.st_uid,
                                     st.st_gid, st.st_size, "",
                                     digest(child_ctx, item.path, st)))
            elif stat.S_ISDIR(mode):
                out.append(self._entry(child_sub, item.path, child_ctx, st))
                self._walk(item.path, child_ctx, child_sub, out)
            elif stat.S_ISLNK(mode) or stat.S_ISFIFO(mode):
                out.append(self._entry(child_sub, item.path, child_ctx, st))
            # sockets and devices are not content: BuildKit's context transfer skips them too


    # -- the cached walk, for cache keys ------------------------------------------------------

    def tree_digest(self, rel: str) -> str:
        started = time.monotonic()
        try:
            return self._tree_digest(rel)
        finally:
            self.seconds += time.monotonic() - started

    def _tree_digest(self, rel: str) -> str:
        """``digest_entries(self.collect(rel))``, computed from the stat cache's per-directory
        records: a directory whose files' stat fields are all unchanged is not even listed
        into entries, only stat-ed (a .dockerignore with ``!`` exceptions takes the long way)."""
        if self.ignore and self.ignore.has_exclusions:
            return digest_entries(self._collect(rel))
        path = self._host(rel)
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            return digest_entries([self._entry("", path, rel, st)])
        return self._dir_digest(path, rel, st)

    def _dir_digest(self, path: str, rel: str, st: os.stat_result) -> str:
        ignore = self.ignore if self.ignore else None
        prefix = rel + "/" if rel else ""
        files: list[tuple[Any, ...]] = []  # the signature: name + 7 stat fields, by name
        subdirs: list[tuple[str, str, os.stat_result]] = []
        size = 0
        with os.scandir(path) as scan:
            for item in scan:
                if ignore is not None and ignore.matches(prefix + item.name):
                    continue
                c = item.stat(follow_symlinks=False)
                mode = c.st_mode
                kind = mode & 0o170000
                if kind == 0o040000:
                    subdirs.append((item.name, item.path, c))
                elif kind in _CONTENT_KINDS:
                    size += c.st_size
                    files.append((item.name, c.st_size, c.st_mtime_ns, c.st_ctime_ns, c.st_ino,
                                  mode, c.st_uid, c.st_gid))
        files.sort()
        signature = tuple(files)
        cached = self.statcache.dirs.get(rel)
        self.files_seen += len(files) + len(subdirs)
        self.bytes_seen += size
        if cached is not None and cached[0] == signature:
            block = cached[1]
        else:
            block = self._rehash_dir(path, rel, signature)
        subdirs.sort(key=lambda t: t[0])
        sub_lines = [f"{name}\0{self._dir_digest(child_path, prefix + name, c)}\n"
                     for name, child_path, c in subdirs]
        return dir_digest(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, block, sub_lines)

    def _rehash_dir(self, path: str, rel: str, signature: tuple[tuple[Any, ...], ...]) -> str:
        """A directory whose files changed: reuse the content of those that did not."""
        cache = self.statcache
        all_trusted = True
        contents: list[str] = []
        lines: list[str] = []
        for sig in signature:
            name, mode, uid, gid = sig[0], sig[5], sig[6], sig[7]
            child = os.path.join(path, name)
            kind = "f" if stat.S_ISREG(mode) else "l" if stat.S_ISLNK(mode) else "p"
            content = cache.known_content(rel, sig)
            if content is None:
                if kind == "f":
                    content, trusted = cache.hash_file(child, os.lstat(child))
                    all_trusted &= trusted
                else:
                    content = os.readlink(child) if kind == "l" else ""
            contents.append(content)
            lines.append(child_line(name, kind, stat.S_IMODE(mode), uid, gid, content))
        block = files_block(lines)
        if all_trusted:
            cache.remember_dir(rel, signature, block, tuple(contents))
        return block


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def files_digest(
    selections: Iterable[tuple[str, Selected]],
) -> tuple[str, Callable[[], dict[str, str]]]:
    """The cache-key digest of COPY sources, and a function giving their manifest (name → short
    content id) — built only when a miss has to be recorded or explained."""
    chosen = list(selections)
    lines = "".join(f"{label}\0{selected.name}\0{selected.digest()}\n" for label, selected in chosen)

    def manifest() -> dict[str, str]:
        out: dict[str, str] = {}
        for _, selected in chosen:
            for entry in selected.entries:
                shown = _join(selected.name, entry.rel) if entry.rel else selected.name
                content = entry.digest or entry.link or ""
                out[shown or "."] = (f"{entry.kind}{entry.mode:o}:{entry.uid}:{entry.gid}:"
                                     f"{content[:16]}")
        return out

    return hashlib.sha256(lines.encode("utf-8", "surrogateescape")).hexdigest(), manifest
