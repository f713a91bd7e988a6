"""Container names: one file per name under ``<root>/.names``, created with ``O_EXCL``.

Why files: checking a name against every container's state costs a read per container on each
create (O(n), and every create gets a name: the engine draws ``adjective_scientist`` when none is
given), and only a lock kept two processes from choosing the same name. An exclusive create is
O(1) and atomic between processes. The file holds the owner's id; a file whose owner is gone (an
``--rm`` container removed by its supervisor, a hand-deleted directory) is stale and reclaimed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from nbdock.errors import Conflict

INDEX_DIR = ".names"


class NameIndex:
    """``name -> container id`` for one runtime root (callers hold the runtime's lock)."""

    def __init__(self, root: Path, existing: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self.root = root
        self.directory = root / INDEX_DIR
        self._existing = existing  # (name, id) of every container, to build an index once

    def _ensure(self) -> None:
        """Roots made before the index existed: index their containers' names once."""
        if self.directory.is_dir():
            return
        building = self.root / f"{INDEX_DIR}.building-{os.getpid()}"
        building.mkdir(exist_ok=True)
        for name, container_id in self._existing():
            if name:
                (building / name).write_text(container_id)
        try:
            os.rename(building, self.directory)
        except OSError:  # another process built it first
            for entry in building.iterdir():
                entry.unlink()
            building.rmdir()

    def owner(self, name: str) -> str | None:
        """The id of the living container called ``name``, or None."""
        try:
            owner = (self.directory / name).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return owner if owner and (self.root / owner / "state.json").exists() else None

    def claim(self, name: str, container_id: str) -> None:
        self._ensure()
        path = self.directory / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            owner = self.owner(name)
            if owner is not None and owner != container_id:
                raise Conflict(
                    f'the container name "/{name}" is already in use by container "{owner}"; '
                    "remove it or choose another name"
                ) from None
            path.write_text(container_id)  # stale: its owner is gone
            return
        try:
            os.write(fd, container_id.encode())
        finally:
            os.close(fd)

    def release(self, name: str, container_id: str) -> None:
        if not name:
            return
        path = self.directory / name
        try:
            if path.read_text() == container_id:
                path.unlink()
        except OSError:
            pass
