"""Walk paths inside an extraction root with directory file descriptors, never leaving it.

A layer tar is hostile input: names with ``..``, symlinks pointing up, hardlinks to the host.
Instead of joining strings and checking prefixes (which ``dest-evil/`` defeats), every path is
resolved one component at a time with ``openat(O_NOFOLLOW)``. When a component is a symlink and
the caller allows following, its target is resolved as if the root were ``/`` (absolute targets
restart at the root, ``..`` stops at the root) — the semantics of extracting inside a chroot,
which is what Docker does, without needing one.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from nbdock.errors import UnsafeLayerError

MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def entry_parts(name: str) -> tuple[str, ...]:
    """Normalise a tar member name to path components relative to the root.

    Leading ``/`` and ``.`` components are dropped; ``..`` is resolved lexically and any name
    that would climb above the root is refused.
    """
    parts: list[str] = []
    for component in name.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            if not parts:
                raise UnsafeLayerError(name, "path climbs out of the layer root")
            parts.pop()
            continue
        parts.append(component)
    return tuple(parts)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


class SafeRoot:
    """An open directory that all lookups are confined to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, _DIR_FLAGS)
        self.privileged = os.geteuid() == 0

    def close(self) -> None:
        os.close(self.fd)

    def open_dir(
        self, parts: tuple[str, ...], *, entry: str, create: bool, follow: bool
    ) -> int | None:
        """Return a new fd for the directory at ``parts`` (the caller closes it).

        Missing directories are created (mode 0755) when ``create``; otherwise None is returned.
        A symlink component is resolved inside the root when ``follow``, else None is returned.
        A component that is neither directory nor symlink raises UnsafeLayerError.
        """
        stack = [os.dup(self.fd)]
        todo = list(reversed(parts))
        budget = MAX_SYMLINKS
        try:
            while todo:
                component = todo.pop()
                if component in ("", "."):
                    continue
                if component == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                fd, link = self._step(stack[-1], component, entry=entry, create=create)
                if fd is not None:
                    stack.append(fd)
                    continue
                if link is None or not follow:
                    return None
                budget -= 1
                if budget < 0:
                    raise UnsafeLayerError(entry, "too many levels of symbolic links")
                if link.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo.extend(reversed(link.split("/")))
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    def _step(
        self, dir_fd: int, component: str, *, entry: str, create: bool
    ) -> tuple[int | None, str | None]:
        """Open ``component`` under ``dir_fd``: ``(fd, None)``, ``(None, link)`` or ``(None, None)``."""
        try:
            return os.open(component, _DIR_FLAGS, dir_fd=dir_fd), None
        except FileNotFoundError:
            if not create:
                return None, None
            os.mkdir(component, 0o755, dir_fd=dir_fd)
            return os.open(component, _DIR_FLAGS, dir_fd=dir_fd), None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        st = lstat_at(dir_fd, component)
        if st is not None and stat.S_ISLNK(st.st_mode):
            return None, os.readlink(component, dir_fd=dir_fd)
        raise UnsafeLayerError(entry, f"parent component {component!r} is not a directory")


def remove_at(dir_fd: int, name: str) -> bool:
    """Remove ``name`` under ``dir_fd`` without following symlinks; True if something was there.

    Directories are emptied through their own fds, so a symlink inside them is unlinked, never
    followed. Unprivileged callers may meet read-only directories (0555) from a layer; those are
    made writable just before their contents are removed.
    """
    st = lstat_at(dir_fd, name)
    if st is None:
        return False
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return True
    child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        if os.geteuid() != 0 and (st.st_mode & 0o700) != 0o700:
            os.chmod(child, 0o700)
        with os.scandir(child) as entries:
            names = [e.name for e in entries]
        for child_name in names:
            remove_at(child, child_name)
    finally:
        os.close(child)
    os.rmdir(name, dir_fd=dir_fd)
    return True


def remove_tree(path: Path) -> None:
    """Remove a whole directory tree (an unpacked layer, a temp dir) safely and completely."""
    parent = os.open(path.parent, _DIR_FLAGS)
    try:
        remove_at(parent, path.name)
    finally:
        os.close(parent)
