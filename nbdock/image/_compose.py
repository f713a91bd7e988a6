"""How new images are put together: configs completed, ``index.json`` composed, input checked.

Pure helpers for ``store.py``: no locking, no database, no blob writes.
"""

from __future__ import annotations

import copy
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbdock.errors import ImageStoreError, InvalidArgument
from nbdock.image import oci, validate
from nbdock.image._db import ImageRow, TagRow
from nbdock.image._saferoot import entry_parts
from nbdock.image.records import LayerRecord
from nbdock.image.reference import Reference

# An empty tar (two zero blocks): the layer an image without layers gets, as OCI manifests need
# at least one. Its digest is the well-known sha256:5f70bf18…
EMPTY_LAYER_TAR = b"\0" * 1024


def reproducible_created() -> str:
    """``SOURCE_DATE_EPOCH`` as RFC 3339, else the Unix epoch: same input, same image id."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    seconds = int(value) if value.isdigit() else 0
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def index_document(images: list[ImageRow], tags: list[TagRow]) -> dict[str, Any]:
    """The layout's ``index.json``: a manifest entry per tag (named by ref.name), and one
    unnamed entry per untagged image so that every stored image stays reachable."""
    by_image: dict[str, list[TagRow]] = {}
    for tag in tags:
        by_image.setdefault(tag.image_id, []).append(tag)
    manifests = []
    for row in images:
        names: list[str | None] = [t.canonical for t in by_image.get(row.id, [])] or [None]
        for name in names:
            annotations = (
                {oci.ANNOTATION_REF_NAME: name, oci.ANNOTATION_CONTAINERD_NAME: name}
                if name
                else {}
            )
            manifests.append(
                oci.Descriptor(
                    oci.MEDIA_TYPE_MANIFEST, row.manifest_digest, row.manifest_size, annotations
                )
            )
    return oci.Index(manifests=tuple(manifests)).to_json()


def tag_row(ref: Reference, image_id: str) -> TagRow:
    return TagRow(ref.canonical, ref.familiar, ref.name, image_id)


def check_is_tar(path: Path) -> None:
    """Refuse input that is not a tar archive, or names paths outside the root, early.

    Symlink tricks can only be judged while extracting (which refuses them safely); names and
    hardlink targets that climb out with ``..`` are refused here, at import, as Docker does.
    """
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                entry_parts(member.name)
                if member.islnk():
                    entry_parts(member.linkname)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(
            f"not a tar archive: {exc}", hint="pass a (optionally gzip/bzip2/xz) tarball"
        ) from exc


def complete_config(
    config: dict[str, Any], layers: list[LayerRecord], *, added_empty: bool
) -> dict[str, Any]:
    document = copy.deepcopy(config)
    architecture, variant = oci.host_platform()
    if "architecture" not in document:
        document["architecture"] = architecture
        if variant:
            document.setdefault("variant", variant)
    document.setdefault("os", "linux")
    document.setdefault("created", reproducible_created())
    document.setdefault("config", {})
    document["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    history = document.get("history")
    if history is None:
        history = [{"created": document["created"], "created_by": "nbdock"} for _ in layers]
    elif added_empty:
        note = "nbdock: empty layer (an OCI manifest needs one)"
        history = [*history, {"created": document["created"], "created_by": note}]
    document["history"] = history
    try:
        validate.config(document)
    except ImageStoreError as exc:
        raise InvalidArgument(f"invalid image config: {exc}") from exc
    non_empty = sum(1 for entry in history if not entry.get("empty_layer"))
    if non_empty != len(layers):
        raise InvalidArgument(
            f"image history has {non_empty} non-empty entries for {len(layers)} layers",
            hint="mark entries that add no layer with empty_layer: true",
        )
    return document
