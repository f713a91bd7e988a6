"""The layered view applies overlayfs' rules without mounting: top-down lookups, whiteouts,
opaque directories, symlinks resolved inside the root — for unpacked layers and tar indexes."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from nbdock.build.layerindex import LayerIndexes, index_entries
from nbdock.build.rootfs import DirLayer, Node, RootView, TarIndex


def whiteout(path: Path) -> None:
    """An overlay whiteout as unprivileged overlayfs (6.7+) writes it: empty + xattr."""
    path.write_bytes(b"")
    os.setxattr(path, "user.overlay.whiteout", b"")


@pytest.fixture
def layers(tmp_path: Path) -> list[Path]:
    base, mid, top = (tmp_path / n for n in ("base", "mid", "top"))
    for d in (base, mid, top):
        d.mkdir()
    (base / "etc").mkdir()
    (base / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n")
    (base / "etc" / "group").write_text("root:x:0:\nwww:x:55:\n")
    (base / "usr" / "bin").mkdir(parents=True)
    (base / "usr" / "bin" / "tool").write_text("t")
    os.symlink("usr/bin", base / "bin")
    (base / "data").mkdir()
    (base / "data" / "old.txt").write_text("old")
    (base / "gone.txt").write_text("x")
    (base / "tmp").mkdir()
    os.chmod(base / "tmp", 0o1777)
    (mid / "data").mkdir()
    os.setxattr(mid / "data", "user.overlay.opaque", b"y")
    (mid / "data" / "new.txt").write_text("new")
    whiteout(mid / "gone.txt")
    (top / "app").mkdir()
    (top / "app" / "main.py").write_text("print()")
    return [base, mid, top]


def view_of(dirs: list[Path]) -> RootView:
    return RootView([DirLayer(str(d)) for d in dirs])


def test_lookups_follow_overlay_rules(layers: list[Path]) -> None:
    view = view_of(layers)
    assert view.lookup("/app/main.py").node.kind == "f"  # type: ignore[union-attr]
    assert view.lookup("/gone.txt") is None  # whited out by mid
    assert view.lookup("/data/old.txt") is None  # hidden by mid's opaque /data
    assert view.lookup("/data/new.txt") is not None
    assert view.lookup("/tmp").node.mode == 0o1777  # type: ignore[union-attr]


def test_symlinks_resolve_inside_the_root(layers: list[Path]) -> None:
    view = view_of(layers)
    parts, found = view.resolve("/bin/tool")
    assert parts == ("usr", "bin", "tool") and found is not None
    assert view.is_dir("/bin")
    parts, found = view.resolve("/bin", follow=False)
    assert found is not None and found.node.kind == "l"
    parts, found = view.resolve("/../../etc/passwd")
    assert parts == ("etc", "passwd") and found is not None
    parts, _ = view.resolve("/bin/../etc")  # as the kernel does: /bin is /usr/bin, so .. is /usr
    assert parts == ("usr", "etc")


def test_a_file_on_the_way_is_not_a_directory(layers: list[Path]) -> None:
    with pytest.raises(NotADirectoryError):
        view_of(layers).resolve("/etc/passwd/x")


def test_merged_listing(layers: list[Path]) -> None:
    view = view_of(layers)
    names = sorted(name for name, _, _ in view.listdir((), 0))
    assert names == ["app", "bin", "data", "etc", "tmp", "usr"]
    data = sorted(name for name, _, _ in view.listdir(("data",), view.floor_of(("data",))))
    assert data == ["new.txt"]


def test_reading_small_files(layers: list[Path]) -> None:
    assert b"web:x:33" in (view_of(layers).read_file("/etc/passwd") or b"")
    assert view_of(layers).read_file("/missing") is None


def test_tar_index_applies_whiteouts_and_opaque_markers() -> None:
    entries = index_entries([
        ("./data/.wh..wh..opq", Node("f")),
        ("data/new.txt", Node("f", 0o644)),
        ("usr/local/bin/x", Node("f", 0o755)),
        ("./.wh.gone.txt", Node("f")),
    ])
    assert entries["data"].opaque
    assert entries["gone.txt"].kind == "w"
    assert entries["usr/local"].kind == "d"  # implied parent
    base = TarIndex({"gone.txt": Node("f"), "data": Node("d"), "data/old.txt": Node("f")})
    view = RootView([base, TarIndex(entries)])
    assert view.lookup("/gone.txt") is None
    assert view.lookup("/data/old.txt") is None
    assert view.lookup("/data/new.txt") is not None


def test_layer_index_from_a_blob_reads_files(tmp_path: Path) -> None:
    blob = tmp_path / "layer.tar"
    with tarfile.open(blob, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("etc/passwd", b"root:x:0:0::/:/bin/sh\n"), ("etc/group", b"g:x:9:\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    entries, offsets = LayerIndexes._scan(blob)
    from nbdock.build.layerindex import BlobIndex

    view = RootView([BlobIndex(entries, offsets, blob)])
    assert view.read_file("/etc/group") == b"g:x:9:\n"
    assert view.is_dir("/etc")
