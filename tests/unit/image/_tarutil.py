"""Helpers for image tests: build tars from small specs, snapshot and list directory trees."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path


def build_tar(entries: list[dict]) -> bytes:
    """A tar from vector-style entries: ``{name, type, mode, data?, linkname?}``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for spec in entries:
            info = tarfile.TarInfo(spec["name"])
            info.mode = int(spec.get("mode", "0o644"), 8)
            info.mtime = 1_000_000
            kind = spec["type"]
            data = spec.get("data", "").encode()
            if kind == "reg":
                info.type = tarfile.REGTYPE
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
            }[kind]
            info.linkname = spec.get("linkname", "")
            tar.addfile(info)
    return buf.getvalue()


def tar_members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def layer_from_paths(paths: list[str]) -> bytes:
    """A tar where ``x/`` is a directory and anything else an empty regular file."""
    entries = [
        {"name": p.rstrip("/"), "type": "dir" if p.endswith("/") else "reg", "mode": "0o755"}
        for p in paths
    ]
    return build_tar(entries)


def make_tree(root: Path, paths: list[str]) -> None:
    for p in paths:
        if p.endswith("/"):
            (root / p).mkdir(parents=True, exist_ok=True)
        else:
            (root / p).parent.mkdir(parents=True, exist_ok=True)
            (root / p).write_text(p)


def list_tree(root: Path) -> list[str]:
    """Relative paths under ``root``; directories end with ``/``. Whiteout devices excluded."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel + "/"
        out.extend(prefix + d + "/" for d in dirnames)
        for f in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except FileNotFoundError:  # overlayfs lists a whiteout it then hides
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                continue
            out.append(prefix + f)
    return sorted(out)


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Everything about a tree that an escape could change (type, mode, content, link, mtime)."""
    result: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip:
            dirnames.clear()
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if skip is not None and path == skip:
                result[str(path)] = ("dest",)
                continue
            st = os.lstat(path)
            content = b""
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).digest()
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            result[str(path)] = (st.st_mode, st.st_ino, st.st_nlink, content, link, st.st_mtime_ns)
    st = os.lstat(root)
    result["."] = (st.st_mode, st.st_mtime_ns)
    return result
