"""Our own checks of OCI documents, applied to everything the store reads.

The rules are those of the OCI image-spec JSON schemas plus the extra checks its Go validator
makes (registered digest algorithms must have their exact encoding, ``Env`` entries must be
``KEY=value``). Each document kind is a short list of field checks; a failure raises
ImageStoreError naming the field, so a corrupt or hostile blob is refused before it is used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from nbdock.errors import ImageStoreError
from nbdock.image import _media as media

_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_REGISTERED_DIGESTS = {
    "sha256": re.compile(r"^[a-f0-9]{64}$"),
    "sha384": re.compile(r"^[a-f0-9]{96}$"),
    "sha512": re.compile(r"^[a-f0-9]{128}$"),
}
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")
_DATE_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_SIZE_MAX = 2**63 - 1

Check = Callable[[Any, str], None]


def _fail(where: str, problem: str) -> None:
    raise ImageStoreError(f"invalid OCI document: {where}: {problem}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(where, "must be a JSON object")
    return value


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        _fail(where, "must be a string")


def _boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        _fail(where, "must be a boolean")


def _string_list(value: Any, where: str) -> None:
    if not isinstance(value, list):
        _fail(where, "must be an array of strings")
    for i, item in enumerate(value):
        _string(item, f"{where}[{i}]")


def _nullable(check: Check) -> Check:
    def nullable(value: Any, where: str) -> None:
        if value is not None:
            check(value, where)

    return nullable


def _map_of(check: Check) -> Check:
    def map_of(value: Any, where: str) -> None:
        for key, item in _object(value, where).items():
            if key == "":
                _fail(where, "keys must not be empty")
            check(item, f"{where}.{key}")

    return map_of


def _fields(doc: dict[str, Any], where: str, required: dict[str, Check], optional: dict[str, Check]) -> None:
    for key, check in required.items():
        if key not in doc:
            _fail(where, f"required field {key!r} is missing")
        check(doc[key], f"{where}.{key}")
    for key, check in optional.items():
        if key in doc:
            check(doc[key], f"{where}.{key}")


def media_type(value: Any, where: str) -> None:
    _string(value, where)
    if not _MEDIA_TYPE_RE.match(value):
        _fail(where, f"{value!r} is not a media type (type/subtype)")


def digest(value: Any, where: str) -> None:
    """``algorithm:encoded``; registered algorithms must use their exact lowercase-hex form."""
    _string(value, where)
    if not _DIGEST_RE.match(value):
        _fail(where, f"{value!r} is not a digest (algorithm:encoded)")
    algorithm, _, encoded = value.partition(":")
    exact = _REGISTERED_DIGESTS.get(algorithm)
    if exact is not None and not exact.match(encoded):
        _fail(where, f"{value!r}: {algorithm} needs its exact lowercase hex encoding")


def size(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(where, "must be an integer")
    if not 0 <= value <= _SIZE_MAX:
        _fail(where, f"{value} is out of range (0..2^63-1)")


def _urls(value: Any, where: str) -> None:
    _string_list(value, where)
    for i, url in enumerate(value):
        if not _URI_RE.match(url):
            _fail(f"{where}[{i}]", f"{url!r} is not an absolute URI")


def _base64(value: Any, where: str) -> None:
    import base64  # only descriptors with inline ``data`` need it
    import binascii

    _string(value, where)
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        _fail(where, "is not valid base64")


def _date_time(value: Any, where: str) -> None:
    _string(value, where)
    if not _DATE_TIME_RE.match(value):
        _fail(where, f"{value!r} is not an RFC 3339 date-time")


_annotations = _map_of(_string)


def _platform(value: Any, where: str) -> None:
    _fields(
        _object(value, where),
        where,
        required={"architecture": _string, "os": _string},
        optional={"os.version": _string, "os.features": _string_list, "variant": _string},
    )


def descriptor(value: Any, where: str = "descriptor") -> None:
    _fields(
        _object(value, where),
        where,
        required={"mediaType": media_type, "size": size, "digest": digest},
        optional={
            "urls": _urls,
            "data": _base64,
            "artifactType": media_type,
            "annotations": _annotations,
            "platform": _platform,
        },
    )


def _schema_version(value: Any, where: str) -> None:
    if isinstance(value, bool) or value != 2:
        _fail(where, "must be 2")


def _layers(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value:
        _fail(where, "must be a non-empty array of descriptors")
    for i, item in enumerate(value):
        descriptor(item, f"{where}[{i}]")


def _descriptors(value: Any, where: str) -> None:
    if not isinstance(value, list):
        _fail(where, "must be an array of descriptors")
    for i, item in enumerate(value):
        descriptor(item, f"{where}[{i}]")


def manifest(value: Any, where: str = "manifest") -> None:
    _fields(
        _object(value, where),
        where,
        required={"schemaVersion": _schema_version, "config": descriptor, "layers": _layers},
        optional={
            "mediaType": media_type,
            "artifactType": media_type,
            "subject": descriptor,
            "annotations": _annotations,
        },
    )


def index(value: Any, where: str = "index") -> None:
    _fields(
        _object(value, where),
        where,
        required={"schemaVersion": _schema_version, "manifests": _descriptors},
        optional={
            "mediaType": media_type,
            "artifactType": media_type,
            "subject": descriptor,
            "annotations": _annotations,
        },
    )


def _env(value: Any, where: str) -> None:
    _string_list(value, where)
    for i, item in enumerate(value):
        if "=" not in item:
            _fail(f"{where}[{i}]", f"{item!r} is not KEY=value")


def _runtime_config(value: Any, where: str) -> None:
    _fields(
        _object(value, where),
        where,
        required={},
        optional={
            "User": _string,
            "ExposedPorts": _nullable(_map_of(_object)),
            "Env": _nullable(_env),
            "Entrypoint": _nullable(_string_list),
            "Cmd": _nullable(_string_list),
            "Volumes": _nullable(_map_of(_object)),
            "WorkingDir": _string,
            "Labels": _nullable(_map_of(_string)),
            "StopSignal": _string,
            "ArgsEscaped": _boolean,
        },
    )


def _rootfs(value: Any, where: str) -> None:
    doc = _object(value, where)

    def diff_ids(ids: Any, at: str) -> None:
        _string_list(ids, at)
        for i, item in enumerate(ids):
            digest(item, f"{at}[{i}]")

    def layers_type(kind: Any, at: str) -> None:
        if kind != "layers":
            _fail(at, 'must be "layers"')

    _fields(doc, where, required={"diff_ids": diff_ids, "type": layers_type}, optional={})


def _history(value: Any, where: str) -> None:
    if not isinstance(value, list):
        _fail(where, "must be an array")
    for i, item in enumerate(value):
        _fields(
            _object(item, f"{where}[{i}]"),
            f"{where}[{i}]",
            required={},
            optional={
                "created": _date_time,
                "author": _string,
                "created_by": _string,
                "comment": _string,
                "empty_layer": _boolean,
            },
        )


def config(value: Any, where: str = "config") -> None:
    _fields(
        _object(value, where),
        where,
        required={"architecture": _string, "os": _string, "rootfs": _rootfs},
        optional={
            "created": _date_time,
            "author": _string,
            "variant": _string,
            "os.version": _string,
            "os.features": _string_list,
            "config": _runtime_config,
            "history": _history,
        },
    )


def layout(value: Any, where: str = "oci-layout") -> None:
    doc = _object(value, where)
    if doc.get("imageLayoutVersion") != media.LAYOUT_VERSION:
        _fail(f"{where}.imageLayoutVersion", f'must be "{media.LAYOUT_VERSION}"')


_BY_MEDIA_TYPE: dict[str, Check] = {
    media.MEDIA_TYPE_DESCRIPTOR: descriptor,
    media.MEDIA_TYPE_MANIFEST: manifest,
    media.MEDIA_TYPE_DOCKER_MANIFEST: manifest,
    media.MEDIA_TYPE_INDEX: index,
    media.MEDIA_TYPE_DOCKER_MANIFEST_LIST: index,
    media.MEDIA_TYPE_CONFIG: config,
    media.MEDIA_TYPE_DOCKER_CONFIG: config,
    media.MEDIA_TYPE_LAYOUT_HEADER: layout,
}


def parse_document(media: str, raw: bytes | str) -> dict[str, Any]:
    """Decode ``raw`` as JSON and check it as a document of media type ``media``."""
    check = _BY_MEDIA_TYPE.get(media)
    if check is None:
        raise ImageStoreError(f"unsupported document media type {media!r}")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageStoreError(f"invalid OCI document: not JSON ({exc})") from exc
    check(doc, media.rsplit("/", 1)[-1])
    return doc


def image_manifest(doc: dict[str, Any]) -> None:
    """The stricter rules for manifests the store runs: an image config and tar layers."""
    manifest(doc)
    if doc["config"]["mediaType"] not in (media.MEDIA_TYPE_CONFIG, media.MEDIA_TYPE_DOCKER_CONFIG):
        _fail("manifest.config.mediaType", f"{doc['config']['mediaType']!r} is not an image config")
    for i, layer in enumerate(doc["layers"]):
        if layer["mediaType"] not in media.LAYER_MEDIA_TYPES:
            _fail(f"manifest.layers[{i}].mediaType", f"{layer['mediaType']!r} is not a layer")
