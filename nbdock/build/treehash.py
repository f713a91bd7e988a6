"""The digest of a copied tree: names, types, modes, owners and contents — never mtimes.

It is hierarchical, like git's tree objects, so that a rebuild can reuse the part of a
directory that did not change: a directory's digest hashes its own metadata, one digest of the
lines of its non-directory children, and a line per subdirectory holding that subdirectory's
digest. The same value comes out whether it is computed from a full walk's entries
(``digest_entries``) or from the build context's cached walk (``BuildContext.tree_digest``),
which re-hashes only the directories whose files' stat fields changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol


class EntryLike(Protocol):
    rel: str
    kind: str
    mode: int
    uid: int
    gid: int
    link: str
    digest: str


def child_line(name: str, kind: str, mode: int, uid: int, gid: int, content: str) -> str:
    return f"{name}\0{kind}\0{mode:o}\0{uid}:{gid}\0{content}\n"


def files_block(lines: Sequence[str]) -> str:
    """The digest of a directory's non-directory children (their lines in name order)."""
    return hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def dir_digest(mode: int, uid: int, gid: int, files: str, subdirs: Sequence[str]) -> str:
    """``subdirs``: ``name\\0digest\\n`` lines, in name order."""
    head = f"d\0{mode:o}\0{uid}:{gid}\0{files}\n" + "".join(subdirs)
    return hashlib.sha256(head.encode("utf-8", "surrogateescape")).hexdigest()


def top_digest(entry: EntryLike) -> str:
    """The digest of a single non-directory source."""
    content = entry.digest or entry.link
    return files_block([child_line("", entry.kind, entry.mode, entry.uid, entry.gid, content)])


def digest_entries(entries: Sequence[EntryLike]) -> str:
    """The tree digest of a collected source (``entries[0]`` is its top, ``rel == ""``)."""
    top = entries[0]
    if top.kind != "d":
        return top_digest(top)
    children: dict[str, list[EntryLike]] = {}
    for entry in entries[1:]:
        children.setdefault(entry.rel.rpartition("/")[0], []).append(entry)
    done: dict[str, str] = {}
    dirs = [e for e in entries if e.kind == "d"]
    for directory in sorted(dirs, key=lambda e: e.rel.count("/") if e.rel else -1, reverse=True):
        lines: list[str] = []
        subdirs: list[str] = []
        for child in sorted(children.get(directory.rel, ()), key=lambda e: e.rel):
            name = child.rel.rpartition("/")[2]
            if child.kind == "d":
                subdirs.append(f"{name}\0{done[child.rel]}\n")
            else:
                lines.append(child_line(name, child.kind, child.mode, child.uid, child.gid,
                                        child.digest or child.link))
        done[directory.rel] = dir_digest(directory.mode, directory.uid, directory.gid,
                                         files_block(lines), subdirs)
    return done[""]
