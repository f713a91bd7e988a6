"""The one Python API, shaped like docker-py: ``nbdock.from_env().containers.run(...)``.

Today it drives the engine in-process; an HTTP transport to the daemon will sit behind the same
classes, so code written against this API does not change when a daemon is used.
"""

from __future__ import annotations

from pathlib import Path

from nbdock.client.containers import Container, ContainerCollection, ExecResult
from nbdock.client.images import Image, ImageCollection
from nbdock.engine import Engine

__all__ = ["Client", "Container", "ExecResult", "Image", "from_env"]


class Client:
    """Entry point: ``containers`` and ``images`` collections over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.containers = ContainerCollection(engine)
        self.images = ImageCollection(engine)

    def close(self) -> None:
        """Stop the engine's fork server and retire its pre-warmed containers (docker-py's
        ``close`` releases the connection pool); running containers are not touched."""
        self.engine.close()


def from_env(root: str | Path | None = None) -> Client:
    """A client for the engine under ``root`` (default ``$NBDOCK_ROOT`` or the standard place)."""
    return Client(Engine(Path(root) if root else None))
