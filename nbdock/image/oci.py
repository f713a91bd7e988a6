"""OCI image-spec documents: media types, descriptors, manifests, indexes, configs.

Documents are written as canonical JSON (sorted keys, no spaces, UTF-8) so that the same
content always yields the same bytes — and therefore the same digest and image id. Reading goes
through ``nbdock.image.validate``, which checks every document against the OCI rules before the
store trusts it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

MEDIA_TYPE_DESCRIPTOR = "application/vnd.oci.descriptor.v1+json"
MEDIA_TYPE_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_EMPTY = "application/vnd.oci.empty.v1+json"
# Docker's v2 schema 2 types, still what most registries serve.
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

LAYER_MEDIA_TYPES = frozenset(
    {
        MEDIA_TYPE_LAYER,
        MEDIA_TYPE_LAYER_GZIP,
        MEDIA_TYPE_LAYER_ZSTD,
        MEDIA_TYPE_DOCKER_LAYER,
        MEDIA_TYPE_DOCKER_LAYER_GZIP,
    }
)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT_VERSION = "1.0.0"

# The keys of an image config's ``config`` section that Docker shows in ``inspect``.
RUNTIME_CONFIG_KEYS = (
    "Entrypoint",
    "Cmd",
    "Env",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
)

_GOARCH = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def canonical_json(document: Any) -> bytes:
    """Deterministic bytes for ``document``: sorted keys, compact separators, UTF-8."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def host_platform() -> tuple[str, str | None]:
    """``(architecture, variant)`` of this machine in OCI (GOARCH) terms."""
    machine = os.uname().machine.lower()
    return _GOARCH.get(machine, (machine, None))


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


def layout_header() -> dict[str, str]:
    """Content of the ``oci-layout`` file."""
    return {"imageLayoutVersion": LAYOUT_VERSION}


def image_config(
    *,
    diff_ids: list[str],
    runtime_config: dict[str, Any] | None,
    history: list[dict[str, Any]],
    created: str,
) -> dict[str, Any]:
    """A complete image config for this host's platform."""
    architecture, variant = host_platform()
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "config": dict(runtime_config or {}),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": history,
        "created": created,
    }
    if variant:
        config["variant"] = variant
    return config
