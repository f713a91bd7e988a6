"""The Debian base image from mmdebstrap (about 30 s, needs deb.debian.org)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from nbdock.image import bootstrap
from nbdock.image.store import ImageStore
from tests.conftest import need


def _reachable(host: str, port: int = 80) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.root
def test_debian_minbase_image_runs_bash(tmp_path: Path) -> None:
    need(os.geteuid() == 0, "root (mmdebstrap root mode, chroot)")
    need(shutil.which("mmdebstrap") is not None, "mmdebstrap (apt-get install mmdebstrap)")
    need(_reachable("deb.debian.org"), "network access to deb.debian.org")
    store = ImageStore(tmp_path / "image")
    image = bootstrap.bootstrap_debian(store)
    codename = bootstrap.host_codename()
    assert image.repo_tags == (f"debian:{codename}", "debian:latest")
    assert image.config["config"]["Cmd"] == ["bash"]
    assert store.get("debian").id == image.id
    (rootfs,) = store.layer_dirs(image)
    result = subprocess.run(
        ["chroot", str(rootfs), "/bin/bash", "-c", "cat /etc/debian_version; dpkg -s bash | head -2"],
        capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "Package: bash" in result.stdout
    assert os.stat(rootfs / "dev" / "null").st_rdev == os.makedev(1, 3)
