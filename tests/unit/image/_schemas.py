"""The OCI image-spec JSON schemas, loaded at test time from the shared conformance folder.

Used only as an independent oracle in tests: the store validates with its own code.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.conftest import conformance_dir

SCHEMA_FILES = {
    "descriptor": "content-descriptor.json",
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "config": "config-schema.json",
    "layout": "image-layout-schema.json",
}
_BASES = ("https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/")


def validators() -> dict[str, jsonschema.Draft4Validator]:
    """One draft-4 validator per document kind, with the schemas' relative refs resolvable."""
    schema_dir: Path = conformance_dir("oci-image-spec") / "schema"
    registry = Registry()
    loaded = {}
    for path in sorted(schema_dir.glob("*.json")):
        schema = json.loads(path.read_text())
        loaded[path.name] = schema
        resource = Resource.from_contents(schema, default_specification=DRAFT4)
        # Each schema refers to its siblings relative to its own id, which sits under one of
        # two bases; registering every file under both lets every ref resolve.
        for base in _BASES:
            registry = registry.with_resource(base + path.name, resource)
        if "id" in schema:
            registry = registry.with_resource(schema["id"], resource)
    checker = jsonschema.Draft4Validator.FORMAT_CHECKER
    return {
        kind: jsonschema.Draft4Validator(loaded[name], registry=registry, format_checker=checker)
        for kind, name in SCHEMA_FILES.items()
    }
