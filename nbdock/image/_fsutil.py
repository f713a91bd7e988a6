"""Crash-safe file-system primitives for the store: temp area, atomic writes, the mutation lock.

Everything half-written lives in ``tmp/`` under a name that starts with the writer's pid, and
only a rename moves it into place. So after a crash, ``tmp/`` entries of dead processes are the
only leftovers, and they can be removed on the next open without disturbing a live process that
shares the store (a notebook kernel and the CLI, say).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

try:  # what threading.RLock returns, without importing threading (the CLI runs no threads)
    from _thread import RLock
except ImportError:  # pragma: no cover - an interpreter without the C lock
    from threading import RLock

from nbdock.image._saferoot import remove_tree

_STALE_SECONDS = 24 * 3600
_libc = ctypes.CDLL(None, use_errno=True)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: Path) -> None:
    """Flush the whole file system holding ``path`` (cheaper than fsyncing a tree file by file)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TempArea:
    """``tmp/`` of the store: per-process names, swept of dead writers' leftovers on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def name(self, kind: str) -> Path:
        return self.path / f"{os.getpid()}.{os.urandom(6).hex()}.{kind}"

    def make_dir(self, kind: str) -> Path:
        path = self.name(kind)
        path.mkdir(mode=0o700)
        return path

    def sweep(self) -> list[Path]:
        """Remove entries whose writer is dead (or that are older than a day); return them."""
        removed = []
        now = time.time()
        for entry in self.path.iterdir():
            pid_text = entry.name.split(".", 1)[0]
            alive = pid_text.isdigit() and _pid_alive(int(pid_text))
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            if alive and age < _STALE_SECONDS:
                continue
            discard(entry)
            removed.append(entry)
        return removed


def discard(path: Path) -> None:
    """Remove a file or directory tree if it exists."""
    try:
        if path.is_dir() and not path.is_symlink():
            remove_tree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def replace_with_bytes(path: Path, data: bytes, temp: TempArea, kind: str = "file") -> None:
    """Put ``data`` at ``path`` whole or not at all: temp file, fsync, rename. The caller fsyncs
    the directory (once, when it renames several files into it)."""
    tmp = temp.name(kind)
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_atomic(path: Path, data: bytes, temp: TempArea) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync the directory."""
    replace_with_bytes(path, data, temp)
    fsync_dir(path.parent)


class StoreLock:
    """An exclusive lock for mutations: ``flock`` across processes, re-entrant within one."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._guard = RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._guard:
            if self._depth == 0:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None
