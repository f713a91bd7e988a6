"""Symlinks planted in an image cannot lead the container's mounts out of its root.

nbdock-init (runtime/native/filesystem.c, ``resolve_in_root``) resolves every mount target as if the
container's root were "/": an absolute link is re-rooted, ``..`` stops at the root. The image
(data/hostile-links/) points /data and /scratch at host paths under /tmp; if either were
followed on the host, a directory would appear there or a host path would be mounted over. (The
generated /etc files go through the same resolution.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import built_image

pytestmark = pytest.mark.root

DATA = Path(__file__).resolve().parent / "data" / "hostile-links"
IMAGE = "nbdock-test/hostile-links:latest"
ESCAPES = [Path(f"/tmp/nbdock-escape-{kind}") for kind in ("absolute", "relative")]


@pytest.fixture(scope="module")
def hostile_image(client: Any) -> Iterator[str]:
    for path in ESCAPES:
        assert not path.exists(), f"{path} exists before the test: remove it"
    try:
        with built_image(client, DATA, IMAGE) as tag:
            yield tag
    finally:
        for path in ESCAPES:  # only if a failure made them
            if path.is_dir() and not os.path.ismount(path):
                shutil.rmtree(path)


def _host_mounts() -> str:
    with open("/proc/self/mountinfo") as handle:
        return handle.read()


def test_volume_and_tmpfs_targets_behind_links_stay_inside(client: Any, hostile_image: str,
                                                          tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("from the host\n")
    out = client.containers.run(
        hostile_image,
        ["sh", "-c", "cat /data/in/marker; ls /scratch/t && echo tmpfs-ok; "
                     "grep -c nbdock-escape /proc/self/mountinfo || true"],
        volumes={str(tmp_path): {"bind": "/data/in", "mode": "ro"}},
        tmpfs={"/scratch/t": ""},
        remove=True,
    ).decode()
    assert "from the host" in out and "tmpfs-ok" in out  # the mounts happened, inside
    for path in ESCAPES:
        assert not path.exists(), f"a mount followed the image's link to the host's {path}"
    assert "nbdock-escape" not in _host_mounts()
