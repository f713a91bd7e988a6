"""``client.images``: the docker-py shaped image API over the in-process engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from nbdock.engine import Engine, ImageRecord
from nbdock.errors import InvalidArgument


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

    def layer_changes(self) -> list[dict[str, Any]]:
        """Per layer, bottom first: ``{"layer", "added", "changed", "removed"}`` as dive shows it."""
        return [change.to_json() for change in self._engine.images.layer_changes(self.id)]

    def reload(self) -> None:
        self.record = self._engine.images.get(self.id)
        self.attrs = self._engine.images.inspect(self.id)

    def history(self) -> list[dict[str, Any]]:
        """docker-py's ``Image.history()``: newest first; ``LayerId`` names the layer made."""
        return [
            {"Id": row.image, "Created": row.created, "CreatedBy": row.created_by,
             "Tags": self.tags if row.image == self.id else [], "Size": row.size,
             "Comment": row.comment, "LayerId": row.layer}
            for row in self._engine.history(self.id)
        ]


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

    def build(
        self,
        path: str | Path | None = None,
        tag: str | list[str] | None = None,
        *,
        dockerfile: str | Path | None = None,
        fileobj: BinaryIO | Any = None,
        buildargs: dict[str, str] | None = None,
        target: str | None = None,
        nocache: bool = False,
        labels: dict[str, str] | None = None,
        secrets: dict[str, str | Path] | None = None,
        progress: Any = None,
    ) -> tuple[Image, list[Any]]:
        """``docker build``, shaped like docker-py's: returns ``(image, events)``.

        ``path`` is the context directory; the Dockerfile is ``<path>/Dockerfile``, or
        ``dockerfile`` (relative to the context, or absolute), or the text of ``fileobj``
        (then ``path`` may be omitted for a build that copies nothing). ``progress`` is called
        with each event as it happens (``event.to_json()`` gives its JSON form). Failures raise
        ``BuildError`` (with ``build_log``, ``line``, ``exit_code``) or ``DockerfileError``.
        """
        text = None
        if fileobj is not None:
            raw = fileobj.read()
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if path is None:
            if text is None:
                raise InvalidArgument("either path or fileobj must be given",
                                      hint="client.images.build(path='.', tag='app')")
            empty = self._engine.root / "build" / "empty-context"
            empty.mkdir(parents=True, exist_ok=True)
            path = empty
        tags = [tag] if isinstance(tag, str) else list(tag or [])
        result = self._engine.build(
            path, dockerfile=dockerfile, dockerfile_text=text, tags=tags,
            build_args=buildargs, target=target, no_cache=nocache, secrets=secrets,
            labels=labels, on_event=progress,
        )
        return Image(self._engine, result.image), list(result.events)

    def check(
        self, path: str | Path | None = None, *, dockerfile: str | Path | None = None,
        fileobj: BinaryIO | Any = None,
    ) -> tuple[list[Any], bool]:
        """``docker build --check``: lint warnings, and whether the Dockerfile's
        ``# check=error=true`` directive makes them fail the build."""
        text = None
        if fileobj is not None:
            raw = fileobj.read()
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
        result = self._engine.build(path or ".", dockerfile=dockerfile, dockerfile_text=text,
                                    check=True)
        return list(result.warnings), bool(result.error)

    def bootstrap(self, kind: str, suite: str | None = None) -> Image:
        """A local base image without a registry: ``busybox`` (busybox-static) or ``debian``."""
        return Image(self._engine, self._engine.bootstrap_image(kind, suite))
