"""An image with more layers than one page of mount(2) options can list.

The init (runtime/native/filesystem.c, ``mount_overlay``) passes ``lowerdir=a:b:...`` to mount(2)
while it fits in a page, and otherwise builds the overlay with the new mount API, one
``lowerdir+`` per layer (Linux 6.8+). Here 49 layer directories under the engine root make the
option string far longer than 4 kB; every layer must be visible, top-most winning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import built_image

pytestmark = pytest.mark.root

DATA = Path(__file__).resolve().parent / "data" / "many-layers"
IMAGE = "nbdock-test/many-layers:latest"


def test_an_image_of_49_layers_mounts_with_every_layer_visible(client: Any) -> None:
    with built_image(client, DATA, IMAGE) as tag:
        record = client.images.get(tag).record
        layer_dirs = client.engine.images.layer_dirs(record)
        assert len(layer_dirs) == 49
        assert len(":".join(map(str, layer_dirs))) > 4096  # beyond mount(2)'s one page of options
        out = client.containers.run(
            tag, ["sh", "-c", "ls / | grep -c '^l[0-9]'; cat /l01 /l48; ls /bin/busybox"],
            remove=True,
        ).decode().splitlines()
    assert out == ["48", "one layer of many", "one layer of many", "/bin/busybox"]
