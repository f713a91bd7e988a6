"""OCI media types, canonical JSON and the host platform: what reading an image needs.

Split from ``oci`` (which re-exports all of it) so that the read path — every ``nbdock run``
looks an image up — does not define ``oci``'s dataclasses (~0.5 ms each to create); only
writers (imports, builds, the layout's ``index.json``) import ``oci`` itself.
"""

from __future__ import annotations

import json
import os
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
