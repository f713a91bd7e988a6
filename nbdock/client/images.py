"""``client.images``: the docker-py shaped image API over the in-process engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from nbdock.engine import Engine, ImageRecord


class Image:
    """One image; ``attrs`` is its ``docker image inspect`` JSON."""

    def __init__(self, engine: Engine, record: ImageRecord) -> None:
        self._engine = engine
        self.record = record
        self.attrs: dict[str, Any] = engine.images.inspect(record.id)

    def __repr__(self) -> str:
        return f"<Image: {', '.join(repr(t) for t in self.tags) or self.short_id}>"

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def short_id(self) -> str:
        return self.record.id.removeprefix("sha256:")[:12]

    @property
    def tags(self) -> list[str]:
        return list(self.record.repo_tags)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.attrs.get("Config", {}).get("Labels") or {})

    def tag(self, repository: str, tag: str | None = None) -> bool:
        self._engine.images.tag(self.id, f"{repository}:{tag}" if tag else repository)
        self.record = self._engine.images.get(self.id)
        return True

    def reload(self) -> None:
        self.record = self._engine.images.get(self.id)
        self.attrs = self._engine.images.inspect(self.id)


class ImageCollection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, name: str) -> Image:
        return Image(self._engine, self._engine.images.get(name))

    def list(self) -> list[Image]:
        return [Image(self._engine, record) for record in self._engine.images.list()]

    def remove(self, image: str, force: bool = False) -> list[str]:
        return self._engine.images.remove(image, force=force)

    def import_image(
        self, source: str | Path | BinaryIO, repository: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Image:
        """``docker import``: a rootfs tarball becomes a one-layer image."""
        src = Path(source) if isinstance(source, str) else source
        return Image(self._engine, self._engine.images.import_rootfs(src, repository, config=config))

    def bootstrap(self, kind: str, suite: str | None = None) -> Image:
        """A local base image without a registry: ``busybox`` (busybox-static) or ``debian``."""
        return Image(self._engine, self._engine.bootstrap_image(kind, suite))
