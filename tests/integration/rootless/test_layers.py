"""A layered image unpacked and mounted without root: whiteouts and opaque directories apply."""

from __future__ import annotations

import io
import tarfile

import pytest

from tests.integration.rootless._support import only_without_root

pytestmark = pytest.mark.rootless
only_without_root()


def _layer(entries: list[tuple[str, bytes | None]]) -> io.BytesIO:
    """A layer tar; ``None`` content makes a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    buf.seek(0)
    return buf


def test_whiteouts_and_opaque_directories_apply_in_a_rootless_overlay(rootless_client) -> None:
    store = rootless_client.engine.images
    base = store.get("busybox")
    middle = store.add_layer_from_tar(_layer([
        ("data", None), ("data/keep", b"kept\n"), ("data/old", b"old\n"),
        ("opq", None), ("opq/a", b"a\n"),
    ]))
    top = store.add_layer_from_tar(_layer([
        ("data", None), ("data/.wh.old", b""), ("bin", None), ("bin/.wh.ls", b""),
        ("opq", None), ("opq/.wh..wh..opq", b""), ("opq/b", b"b\n"),
    ]))
    # Keep the base's runtime config; history and rootfs are rebuilt for the three layers.
    config = {"config": base.config.get("config") or {}}
    store.create_image(config, [*base.layers, middle, top], "rootless-layers:test")
    out = rootless_client.containers.run(
        "rootless-layers:test",
        ["sh", "-c", "ls /data | tr '\\n' ' '; echo; ls /opq | tr '\\n' ' '; echo; "
         "test -e /bin/ls && echo ls-present || echo ls-gone; cat /data/keep"],
        remove=True,
    ).decode()
    assert [line.strip() for line in out.splitlines()] == ["keep", "b", "ls-gone", "kept"]
