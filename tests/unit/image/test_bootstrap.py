"""The busybox base image built from the host's busybox-static, and the missing-tool errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbdock.errors import MissingHostTool
from nbdock.image import bootstrap
from nbdock.image.store import ImageStore
from tests.conftest import need


def _have_busybox() -> bool:
    try:
        bootstrap.find_static_busybox()
    except MissingHostTool:
        return False
    return True


def test_busybox_image_is_reproducible_and_runs(tmp_path: Path) -> None:
    need(_have_busybox(), "busybox-static (apt-get install busybox-static)")
    first = bootstrap.bootstrap_busybox(ImageStore(tmp_path / "a"))
    store = ImageStore(tmp_path / "b")
    again = bootstrap.bootstrap_busybox(store)
    assert bootstrap.bootstrap_busybox(store).id == again.id == first.id
    assert again.repo_tags == ("busybox:latest",)
    assert again.config["config"] == {"Cmd": ["sh"], "Env": [bootstrap.DEFAULT_PATH]}
    (rootfs,) = store.layer_dirs(again)
    assert os.readlink(rootfs / "bin" / "sh") == "/bin/busybox"
    assert (rootfs / "bin" / "busybox").stat().st_mode & 0o111
    assert not (rootfs / "linuxrc").exists()
    assert (rootfs / "etc" / "passwd").read_text().splitlines()[0] == "root:x:0:0:root:/root:/bin/sh"
    assert "nobody:x:65534:65534" in (rootfs / "etc" / "passwd").read_text()
    assert "nobody:x:65534:" in (rootfs / "etc" / "group").read_text()
    assert oct((rootfs / "tmp").stat().st_mode & 0o7777) == oct(0o1777)
    for d in ("proc", "sys", "dev", "root"):
        assert (rootfs / d).is_dir()
    applets = subprocess.run(["busybox", "--list-full"], capture_output=True, text=True).stdout
    for applet in applets.split():
        if applet not in ("bin/busybox", "linuxrc"):
            assert os.readlink(rootfs / applet) == "/bin/busybox", applet


@pytest.mark.root
def test_busybox_rootfs_runs_a_shell_in_chroot(tmp_path: Path) -> None:
    need(os.geteuid() == 0, "root (chroot)")
    need(_have_busybox(), "busybox-static (apt-get install busybox-static)")
    store = ImageStore(tmp_path / "image")
    (rootfs,) = store.layer_dirs(bootstrap.bootstrap_busybox(store))
    result = subprocess.run(
        ["chroot", str(rootfs), "/bin/sh", "-c", "echo hi; ls /bin/ls"],
        capture_output=True, text=True, env={"PATH": bootstrap.DEFAULT_PATH.split("=", 1)[1]},
    )
    assert (result.returncode, result.stdout) == (0, "hi\n/bin/ls\n"), result.stderr


def test_elf_static_detection() -> None:
    need(_have_busybox(), "busybox-static (apt-get install busybox-static)")
    assert bootstrap.is_static_elf(bootstrap.find_static_busybox())
    assert not bootstrap.is_static_elf(Path(os.path.realpath(sys.executable)))
    assert not bootstrap.is_static_elf(Path(__file__))


def test_missing_tools_name_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    dynamic = Path(os.path.realpath(shutil.which("ls", path="/usr/bin:/bin") or "/bin/ls"))
    monkeypatch.setattr(bootstrap, "_BUSYBOX_CANDIDATES", (dynamic, tmp_path / "absent"))
    store = ImageStore(tmp_path / "image")
    with pytest.raises(MissingHostTool) as info:
        bootstrap.bootstrap_busybox(store)
    assert info.value.package == "busybox-static" and "apt-get install busybox-static" in str(info.value)
    with pytest.raises(MissingHostTool) as info:
        bootstrap.bootstrap_debian(store, "bookworm")
    assert info.value.package == "mmdebstrap"
    assert store.list() == []
