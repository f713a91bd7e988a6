"""What each layer of an image did to the filesystem: files added, changed and removed.

This is what ``dive`` shows and what the notebook's layer stack expands to. It is computed from
the layer tars alone (headers only; tarfile seeks over file data), replaying them bottom-up over
a map of the merged view, so it needs no unpacked layer and no mount.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass
class LayerChanges:
    """Paths relative to the root, without a leading slash; sizes in bytes (0 for non-files)."""

    diff_id: str
    added: list[tuple[str, int]] = field(default_factory=list)
    changed: list[tuple[str, int]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "layer": self.diff_id,
            "added": [{"path": p, "size": s} for p, s in self.added],
            "changed": [{"path": p, "size": s} for p, s in self.changed],
            "removed": list(self.removed),
        }


def _clean(name: str) -> str:
    return name.lstrip("./").rstrip("/") if name not in (".", "./") else ""


def _drop_tree(merged: dict[str, int], root: str, keep_root: bool) -> list[str]:
    prefix = root + "/" if root else ""
    gone = [p for p in merged if (p.startswith(prefix) or (p == root and not keep_root))]
    for path in gone:
        if path == root and keep_root:
            continue
        del merged[path]
    return gone


def replay(layers: Iterable[tuple[str, Path]]) -> list[LayerChanges]:
    """``layers`` are (diff_id, uncompressed tar path), bottom first."""
    merged: dict[str, int] = {}
    result = []
    for diff_id, tar_path in layers:
        changes = LayerChanges(diff_id)
        with tarfile.open(tar_path, "r:") as archive:
            for member in archive:
                path = _clean(member.name)
                parent, _, base = path.rpartition("/")
                if base == _OPAQUE:
                    if _drop_tree(merged, parent, keep_root=True):
                        changes.removed.append(f"{parent}/*" if parent else "*")
                    continue
                if base.startswith(_WHITEOUT):
                    target = f"{parent}/{base[len(_WHITEOUT):]}" if parent else base[len(_WHITEOUT):]
                    if _drop_tree(merged, target, keep_root=False):
                        changes.removed.append(target)
                    continue
                if not path:
                    continue
                size = member.size if member.isfile() else 0
                if member.isdir() and path in merged:
                    continue  # a directory re-listed only as a parent of what changed inside
                (changes.changed if path in merged else changes.added).append((path, size))
                merged[path] = size
        result.append(changes)
    return result
