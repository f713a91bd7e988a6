"""The image store: an OCI image layout on disk, indexed in SQLite, layers unpacked once.

Layout under ``root`` (e.g. ``data_root()/"image"``)::

    oci-layout, index.json, blobs/sha256/<hex>   an OCI image layout (skopeo/umoci can read it:
                                                 ``oci:<root>:docker.io/library/busybox:latest``)
    index.db                                     SQLite index: images, tags, layers
    layers/<diff_id hex>/                        unpacked layers, used as overlayfs lower dirs
    tmp/                                         half-written files; swept on open
    lock                                         flock taken by every mutation

Layers are stored uncompressed (``application/vnd.oci.image.layer.v1.tar``), so a layer's blob
digest is its diff_id; gzip (or bzip2/xz) input is decompressed on the way in. Image ids are the
digest of the canonical-JSON config, so the same content always gets the same id.

Imports are reproducible: ``created`` comes from ``SOURCE_DATE_EPOCH`` when set, else it is the
Unix epoch (``1970-01-01T00:00:00Z``) — unlike ``docker import``, which stamps the current time
and so gives a new id each time.

Two processes (a notebook kernel and the CLI) may use one store: reads are SQLite snapshots,
mutations hold the ``lock`` file, files appear only by atomic rename.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from nbdock.errors import (
    Conflict,
    ImageNotFound,
    ImageStoreError,
    InvalidArgument,
    InvalidReference,
    UnsafeLayerError,
)
from nbdock.image import _media as media
from nbdock.image import validate
from nbdock.image._blobs import BlobStore
from nbdock.image._db import ImageRow, IndexDB, LayerRow
from nbdock.image._fsutil import StoreLock, TempArea, discard, write_atomic
from nbdock.image._unpack import LayerDirs
from nbdock.image.digest import HEX64_RE, hex_of, require_sha256, sha256_digest
from nbdock.image.records import ImageRecord, LayerRecord, inspect_dict
from nbdock.image.reference import Reference, parse_reference

__all__ = ["ImageRecord", "ImageStore", "LayerRecord", "reproducible_created"]

_ID_PREFIX_RE = re.compile(r"^[a-f0-9]{4,64}$")
_VERIFIED_MAX = 512  # images whose documents this process has verified (~1 kB each)


def _compose() -> Any:
    """Writers' helpers (tarfile, datetime, ...), imported on first write: ``nbdock run`` and
    other read-only commands never pay for them."""
    from nbdock.image import _compose as module

    return module


def _archive() -> Any:
    from nbdock.image import archive

    return archive


class _Verified(NamedTuple):
    """An image's documents as ``_verify`` checked them, and the blob files it read them from."""

    manifest_digest: str
    files: tuple[tuple[int, int, int, int], ...]
    config_bytes: bytes
    layers: tuple[LayerRecord, ...]


def _tag_reference(text: str) -> Reference:
    ref = parse_reference(text)
    if ref.digest is not None:
        raise InvalidReference(text, "cannot tag an image with a digest reference")
    return ref


def reproducible_created() -> str:
    """``SOURCE_DATE_EPOCH`` as RFC 3339, else the Unix epoch (see the module docstring)."""
    return str(_compose().reproducible_created())


class ImageStore:
    """Images, tags and layers under ``root``; see the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.temp = TempArea(self.root / "tmp")
        self.blobs = BlobStore(self.root, self.temp)
        self.layers_dir = self.root / "layers"
        self._layer_dirs = LayerDirs(self.layers_dir, self.temp, self.blobs)
        self._lock = StoreLock(self.root / "lock")
        # image id -> its documents as read, hashed and validated once (``_verify``); blobs are
        # content-addressed, so only a changed file (``_file_identities``) makes them suspect.
        self._verified: dict[str, _Verified] = {}
        with self._lock.held():
            self.db = IndexDB(self.root / "index.db")
            if not (self.root / "oci-layout").is_file():
                write_atomic(self.root / "oci-layout", media.canonical_json(media.layout_header()), self.temp)
            if not (self.root / "index.json").is_file():
                self._write_index()
            self.temp.sweep()

    # -- lookups ------------------------------------------------------------------------------

    def get(self, ref_or_id: str) -> ImageRecord:
        """An image by reference (``busybox``), id (``sha256:…``) or unambiguous id prefix."""
        image_id, _ = self._resolve(ref_or_id)
        return self._record(image_id)

    def list(self) -> list[ImageRecord]:
        """All images, most recently added first."""
        return [self._record(row.id) for row in self.db.images()]

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        """The image shaped like one object of ``docker image inspect``."""
        return inspect_dict(self.get(ref_or_id))

    def _resolve(self, text: str) -> tuple[str, Reference | None]:
        """``(image id, the reference that matched or None when found by id)``."""
        text = text.strip()
        if text.startswith("sha256:"):
            return self._by_id_prefix(text[len("sha256:") :], text), None
        if HEX64_RE.match(text):
            return self._by_id_prefix(text, text), None
        try:
            ref = parse_reference(text)
        except InvalidReference:
            if _ID_PREFIX_RE.match(text):
                return self._by_id_prefix(text, text), None
            raise
        image_id = self._by_reference(ref)
        if image_id is not None:
            return image_id, ref
        if _ID_PREFIX_RE.match(text):
            return self._by_id_prefix(text, text), None
        raise ImageNotFound(text)

    def _by_reference(self, ref: Reference) -> str | None:
        if ref.digest is not None:
            matches = self.db.images_in_repository(ref.name, ref.digest)
            return matches[0] if matches else None
        row = self.db.tag(ref.canonical)
        return row.image_id if row else None

    def _by_id_prefix(self, hex_prefix: str, original: str) -> str:
        if not _ID_PREFIX_RE.match(hex_prefix):
            raise ImageNotFound(original)
        matches = self.db.ids_with_prefix(hex_prefix)
        if len(matches) != 1:
            raise ImageNotFound(original)  # none, or ambiguous
        return matches[0]

    def _record(self, image_id: str, written: tuple[bytes, bytes] | None = None) -> ImageRecord:
        """The image's record; ``written`` is its (config, manifest) bytes when this process just
        stored them, sparing a re-read and re-hash of both blobs. Documents verified once in this
        process are not read again (``_verified``); the config is parsed anew for every record,
        so callers never share a mutable dict."""
        row = self.db.image(image_id)
        if row is None:
            raise ImageNotFound(image_id)
        known = self._verified.get(image_id)
        if known is not None and known.manifest_digest == row.manifest_digest and (
            known.files == self._file_identities(image_id, row.manifest_digest)
        ):
            config = json.loads(known.config_bytes)
            layers = known.layers
        else:
            config, layers = self._verify(image_id, row, written)
        return ImageRecord(
            id=image_id,
            manifest_digest=row.manifest_digest,
            repo_tags=tuple(t.familiar for t in self.db.tags_of(image_id)),
            config=config,
            layers=layers,
            size=sum(layer.size for layer in layers),
            created=config.get("created", row.created),
        )

    def _file_identities(self, *digests: str) -> tuple[tuple[int, int, int, int], ...] | None:
        """(inode, size, mtime, ctime) of each blob: any rewrite or replacement changes it."""
        try:
            stats = [os.stat(self.blobs.path(digest)) for digest in digests]
        except OSError:
            return None
        return tuple((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in stats)

    def _verify(
        self, image_id: str, row: ImageRow, written: tuple[bytes, bytes] | None
    ) -> tuple[dict[str, Any], tuple[LayerRecord, ...]]:
        """Read (hashing), parse and check the config and manifest; remember them as verified."""
        files = self._file_identities(image_id, row.manifest_digest)
        config_bytes, manifest_bytes = written or (
            self.blobs.read_bytes(image_id),
            self.blobs.read_bytes(row.manifest_digest),
        )
        config = validate.parse_document(media.MEDIA_TYPE_CONFIG, config_bytes)
        manifest = validate.parse_document(media.MEDIA_TYPE_MANIFEST, manifest_bytes)
        validate.image_manifest(manifest)
        if manifest["config"]["digest"] != image_id:
            raise ImageStoreError(f"manifest {row.manifest_digest} does not describe {image_id}")
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(manifest["layers"]):
            raise ImageStoreError(f"image {image_id}: config and manifest disagree on layers")
        layers = tuple(
            LayerRecord(require_sha256(d["digest"]), require_sha256(diff_id), d["size"])
            for d, diff_id in zip(manifest["layers"], diff_ids, strict=True)
        )
        if files is not None:  # identities taken before the read: a rewrite meanwhile shows
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[image_id] = _Verified(row.manifest_digest, files, config_bytes, layers)
        return config, layers

    # -- adding content -------------------------------------------------------------------------

    def add_layer_from_tar(
        self, source: Path | str | BinaryIO, *, trusted: bool = False
    ) -> LayerRecord:
        """Store a layer tar (plain or compressed) uncompressed; unpacking happens on first use.

        Untrusted input (imports, pulls) is re-read as a tar and refused if it is not one or names
        paths outside the root. ``trusted`` skips that pass, for tars nbdock itself wrote (the
        builder's layers): it costs ~50 µs a file, and extraction refuses unsafe entries anyway.
        """
        with self._lock.held():
            with _archive().open_tar_stream(source) as plain:
                digest, size = self.blobs.write_stream(plain)
            if not trusted:
                self._check_tar(digest)
            return self._index_layer(digest, size)

    def add_layer_from_file(self, path: Path | str, *, trusted: bool = False) -> LayerRecord:
        """Store a finished, uncompressed layer tar by renaming it into ``blobs/`` — no copy.

        ``path`` should come from ``temp_path`` (the store's own file system; elsewhere it is
        copied). It is fsynced, hashed, checked as ``add_layer_from_tar`` checks (unless
        ``trusted``) and moved; it is gone afterwards, whether or not this succeeded.
        """
        path = Path(path)
        with self._lock.held():
            if not trusted:
                try:
                    _compose().check_is_tar(path)
                except BaseException:
                    discard(path)
                    raise
            digest, size = self.blobs.adopt(path)
            return self._index_layer(digest, size)

    def temp_path(self, kind: str = "layer") -> Path:
        """A fresh name in the store's temp area for a file to hand to ``add_layer_from_file``;
        what a crashed writer leaves there is swept on the next open."""
        return self.temp.name(kind)

    def _check_tar(self, digest: str) -> None:
        try:
            _compose().check_is_tar(self.blobs.path(digest))
        except (InvalidArgument, UnsafeLayerError):
            if self.db.layer(digest) is None:
                self.blobs.delete(digest)
            raise

    def _index_layer(self, digest: str, size: int) -> LayerRecord:
        with self.db.transaction() as db:
            IndexDB.add_layer(db, LayerRow(digest, digest, size, media.MEDIA_TYPE_LAYER))
        return LayerRecord(digest=digest, diff_id=digest, size=size)

    def has_layer(self, diff_id: str) -> bool:
        """Whether the layer is indexed and its blob is present (a cache hit may name a layer
        that ``rmi`` has since deleted)."""
        row = self.db.layer(diff_id)
        return row is not None and self.blobs.exists(row.blob_digest)

    def import_rootfs(
        self,
        source: Path | str | BinaryIO,
        reference: str | None,
        *,
        config: dict[str, Any] | None = None,
        history_comment: str = "",
    ) -> ImageRecord:
        """Like ``docker import``: a rootfs tarball becomes a one-layer image.

        ``config`` is the runtime section (``{"Cmd": ["sh"], "Env": [...]}``); empty by default,
        as with docker import. ``created`` is reproducible (see the module docstring).
        """
        with self._lock.held():
            layer = self.add_layer_from_tar(source)
            created = reproducible_created()
            entry: dict[str, Any] = {"created": created, "created_by": "nbdock import"}
            if history_comment:
                entry["comment"] = history_comment
            image_config = media.image_config(
                diff_ids=[layer.diff_id], runtime_config=config, history=[entry], created=created
            )
            return self.create_image(image_config, [layer], reference)

    def create_image(
        self,
        config: dict[str, Any],
        layers: list[LayerRecord],
        reference: str | None,
        *,
        extra_tags: Sequence[str] = (),
    ) -> ImageRecord:
        """Commit an image from an image config and stored layers (bottom first); tag it if asked.

        ``config`` may be partial: ``architecture``/``os``/``created`` default to this host and
        the reproducible time, ``rootfs`` is always rebuilt from ``layers``, and ``history``
        (one non-empty entry per layer) is made up when missing. An image without layers gets
        the empty layer, since OCI manifests need at least one. ``reference`` and
        ``extra_tags`` are all set in the image's one index transaction.
        """
        refs = [_tag_reference(r) for r in ([reference] if reference else []) + list(extra_tags)]
        with self._lock.held():
            added_empty = not layers
            if added_empty:
                layers = [self.add_layer_from_tar(io.BytesIO(_compose().EMPTY_LAYER_TAR))]
            document = _compose().complete_config(config, layers, added_empty=added_empty)
            for layer in layers:
                if self.db.layer(layer.diff_id) is None or not self.blobs.exists(layer.digest):
                    raise ImageStoreError(f"layer {layer.diff_id} is not in the store")
            config_bytes = media.canonical_json(document)
            config_digest, config_size = sha256_digest(config_bytes), len(config_bytes)
            from nbdock.image import oci  # writers only: see _media

            manifest = oci.Manifest(
                config=oci.Descriptor(media.MEDIA_TYPE_CONFIG, config_digest, config_size),
                layers=tuple(
                    oci.Descriptor(media.MEDIA_TYPE_LAYER, layer.digest, layer.size)
                    for layer in layers
                ),
            )
            manifest_bytes = media.canonical_json(manifest.to_json())
            # Both blobs fsynced and renamed, their directory fsynced once, before the index
            # names them: a crash leaves at worst unreferenced blobs.
            (_, _), (manifest_digest, manifest_size) = self.blobs.write_many(
                [config_bytes, manifest_bytes]
            )
            row = ImageRow(
                id=config_digest,
                manifest_digest=manifest_digest,
                manifest_size=manifest_size,
                created=document["created"],
                size=sum(layer.size for layer in layers),
                added=time.time(),
            )
            with self.db.transaction() as db:
                IndexDB.add_image(db, row, [layer.diff_id for layer in layers])
                for ref in refs:
                    IndexDB.set_tag(db, _compose().tag_row(ref, config_digest))
            self._write_index()
            return self._record(config_digest, (config_bytes, manifest_bytes))

    # -- tags and removal -----------------------------------------------------------------------

    def tag(self, ref_or_id: str, new_ref: str, *more: str) -> ImageRecord:
        """Point ``new_ref`` (``name[:tag]``, default ``latest``) and any ``more`` at an image,
        in one transaction; moves the tags."""
        refs = [_tag_reference(r) for r in (new_ref, *more)]
        with self._lock.held():
            image_id, _ = self._resolve(ref_or_id)
            with self.db.transaction() as db:
                for ref in refs:
                    IndexDB.set_tag(db, _compose().tag_row(ref, image_id))
            self._write_index()
            return self._record(image_id)

    def remove(self, ref_or_id: str, force: bool = False) -> list[str]:
        """Untag and/or delete an image, like ``docker rmi``; returns Docker's report lines.

        By tag: that tag goes, and the image too once it has no tags left. By id: all tags go
        and the image is deleted — which needs ``force`` when tags from several repositories
        point at it (Conflict otherwise). Blobs and unpacked layers no other image uses are
        deleted.
        """
        with self._lock.held():
            image_id, ref = self._resolve(ref_or_id)
            tags = self.db.tags_of(image_id)
            lines: list[str] = []
            if ref is not None and ref.digest is None:
                untag = [t for t in tags if t.canonical == ref.canonical]
            else:
                if len({t.repository for t in tags}) > 1 and not force:
                    short = image_id.split(":", 1)[1][:12]
                    raise Conflict(
                        f"conflict: unable to delete {short} (must be forced) - image is "
                        "referenced in multiple repositories"
                    )
                untag = tags
            remaining = [t for t in tags if t not in untag]
            row = self.db.image(image_id)
            with self.db.transaction() as db:
                for t in untag:
                    IndexDB.remove_tag(db, t.canonical)
                orphans = [] if remaining else IndexDB.remove_image(db, image_id)
            lines += [f"Untagged: {t.familiar}" for t in untag]
            self._write_index()
            if not remaining:
                lines.append(f"Deleted: {image_id}")
                self._delete_image_files(image_id, row, orphans)
                lines += [f"Deleted: {layer.diff_id}" for layer in orphans]
            return lines

    def _delete_image_files(
        self, image_id: str, row: ImageRow | None, orphans: list[LayerRow]
    ) -> None:
        """After the index no longer names them: the config, manifest and orphaned layers."""
        self._verified.pop(image_id, None)
        self.blobs.delete(image_id)
        if row is not None:
            self.blobs.delete(row.manifest_digest)
        for layer in orphans:
            self.blobs.delete(layer.blob_digest)
            self._layer_dirs.discard(layer.diff_id)

    # -- unpacked layers ------------------------------------------------------------------------

    def layer_changes(self, ref_or_id: str) -> list[Any]:
        """Per layer, bottom first: the files it added, changed and removed (``LayerChanges``)."""
        from nbdock.image.layerfiles import replay

        image = self.get(ref_or_id)
        return replay((layer.diff_id, self.blobs.path(layer.digest)) for layer in image.layers)

    def layer_dirs(self, image: ImageRecord) -> list[Path]:
        """The image's unpacked layer directories, bottom first (unpacking each on first use)."""
        return self.unpacked_dirs(image.layers)

    def unpacked_dirs(self, layers: Sequence[LayerRecord]) -> list[Path]:
        """Unpacked directories of stored layers, in the given order (unpacking on first use):
        for layer lists that are not (yet) images, such as a build's intermediate states."""
        return [self._unpacked(layer) for layer in layers]

    def _unpacked(self, layer: LayerRecord) -> Path:
        final, _ = self._layer_dirs.unpack(layer)
        with self.db.transaction() as db:
            IndexDB.set_unpacked(db, layer.diff_id)
        return final

    # -- maintenance ----------------------------------------------------------------------------

    def check(self, *, verify_blobs: bool = False) -> list[str]:
        """Repair what a crashed process left; report (and with ``verify_blobs``, find) damage.

        Always: sweep dead writers' temp files and half-extracted layers, drop unpacked layer
        dirs the index does not know. ``verify_blobs`` re-hashes every blob and deletes those
        whose content does not match their name (their images then fail loudly on use).
        """
        report: list[str] = []
        with self._lock.held():
            report += [f"removed leftover {p.name}" for p in self.temp.sweep()]
            known = {hex_of(layer.diff_id) for layer in self.db.layers()}
            for entry in self.layers_dir.iterdir():
                if entry.name not in known:
                    discard(entry)
                    report.append(f"removed unreferenced layer dir {entry.name}")
            if verify_blobs:
                for digest in self.blobs.all_digests():
                    with self.blobs.reader(digest) as reader:
                        try:
                            reader.verify(digest)
                        except ImageStoreError as exc:
                            report.append(f"deleted corrupt blob {digest}: {exc}")
                            corrupt = True
                        else:
                            corrupt = False
                    if corrupt:
                        self.blobs.delete(digest)
            self._write_index()
        return report

    def _write_index(self) -> None:
        """Rewrite ``index.json`` from the database: one entry per tag, one per untagged image."""
        document = _compose().index_document(list(reversed(self.db.images())), self.db.all_tags())
        write_atomic(self.root / "index.json", media.canonical_json(document), self.temp)
