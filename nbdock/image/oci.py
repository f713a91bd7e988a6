"""OCI image-spec documents: media types, descriptors, manifests, indexes, configs.

Documents are written as canonical JSON (sorted keys, no spaces, UTF-8) so that the same
content always yields the same bytes — and therefore the same digest and image id. Reading goes
through ``nbdock.image.validate``, which checks every document against the OCI rules before the
store trusts it. The media types and helpers are defined in ``_media`` (what reading an image
needs, without these dataclasses) and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbdock.image._media import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    LAYER_MEDIA_TYPES,
    LAYOUT_VERSION,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_DESCRIPTOR,
    MEDIA_TYPE_DOCKER_CONFIG,
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_EMPTY,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_LAYER_ZSTD,
    MEDIA_TYPE_LAYOUT_HEADER,
    MEDIA_TYPE_MANIFEST,
    RUNTIME_CONFIG_KEYS,
    canonical_json,
    host_platform,
    image_config,
    layout_header,
)

__all__ = [
    "ANNOTATION_CONTAINERD_NAME", "ANNOTATION_REF_NAME", "LAYER_MEDIA_TYPES", "LAYOUT_VERSION",
    "MEDIA_TYPE_CONFIG", "MEDIA_TYPE_DESCRIPTOR", "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER", "MEDIA_TYPE_DOCKER_LAYER_GZIP", "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST", "MEDIA_TYPE_EMPTY", "MEDIA_TYPE_INDEX", "MEDIA_TYPE_LAYER",
    "MEDIA_TYPE_LAYER_GZIP", "MEDIA_TYPE_LAYER_ZSTD", "MEDIA_TYPE_LAYOUT_HEADER",
    "MEDIA_TYPE_MANIFEST", "RUNTIME_CONFIG_KEYS", "Descriptor", "Index", "Manifest",
    "canonical_json", "host_platform", "image_config", "layout_header",
]


@dataclass(frozen=True)
class Descriptor:
    """Points at a blob: what it is (media type), its digest and its size in bytes."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Descriptor:
        """Build from an already validated descriptor object."""
        return cls(
            media_type=doc["mediaType"],
            digest=doc["digest"],
            size=doc["size"],
            annotations=dict(doc.get("annotations") or {}),
            platform=doc.get("platform"),
        )


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config blob and the layer blobs, bottom layer first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)
    media_type: str = MEDIA_TYPE_MANIFEST

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        return cls(
            config=Descriptor.from_json(doc["config"]),
            layers=tuple(Descriptor.from_json(d) for d in doc["layers"]),
            annotations=dict(doc.get("annotations") or {}),
            media_type=doc.get("mediaType", MEDIA_TYPE_MANIFEST),
        )


@dataclass(frozen=True)
class Index:
    """An image index (also the ``index.json`` at the root of an OCI image layout)."""

    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Index:
        return cls(
            manifests=tuple(Descriptor.from_json(d) for d in doc["manifests"]),
            annotations=dict(doc.get("annotations") or {}),
        )
