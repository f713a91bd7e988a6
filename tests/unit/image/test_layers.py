"""Layer extraction against the shared hostile-layer and whiteout vectors, in both modes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from nbdock.errors import ImageStoreError, UnsafeLayerError
from nbdock.image.layers import extract_layer
from tests.conftest import conformance_dir, need
from tests.unit.image._tarutil import build_tar, layer_from_paths, list_tree, make_tree, snapshot

MODES = ("apply", "overlay")


def _vectors() -> dict:
    return json.loads((conformance_dir("layer-extraction") / "vectors.json").read_text())


def _extract(data: bytes, dest: Path, mode: str, namespace: str | None = None) -> None:
    extract_layer(io.BytesIO(data), dest, mode=mode, xattr_namespace=namespace)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_every_breakout_vector_stays_inside_dest(tmp_path: Path, mode: str) -> None:
    vectors = _vectors()["breakouts"]
    assert len(vectors) >= 22
    for vector in vectors:
        base = tmp_path / mode / vector["id"]
        dest, victim, evil = base / "dest", base / "victim", base / "dest-evil"
        for d in (dest, victim, evil):
            d.mkdir(parents=True)
        (victim / "hello").write_text("hello")
        (evil / "secret").write_text("secret")
        before = snapshot(base, skip=dest)
        data = build_tar(vector["entries"])
        refused = None
        try:
            _extract(data, dest, mode)
        except UnsafeLayerError as exc:
            refused = exc
        assert snapshot(base, skip=dest) == before, f"{vector['id']}: something outside dest changed"
        if vector["expect"] == "success_same_inode":
            assert refused is None, f"{vector['id']}: {refused}"
            names = [e["name"] for e in vector["entries"]]
            inodes = {os.lstat(dest / n.lstrip("/")).st_ino for n in names}
            assert len(inodes) == 1
        else:
            assert vector["expect"] == "no_escape"


def test_hardlink_to_symlink_extracts_without_error(tmp_path: Path) -> None:
    vector = next(v for v in _vectors()["breakouts"] if v["id"] == "hardlink-to-symlink")
    _extract(build_tar(vector["entries"]), tmp_path, "apply")
    assert os.readlink(tmp_path / "symlink2") == "regfile"
    assert os.lstat(tmp_path / "symlink2").st_ino == os.lstat(tmp_path / "symlink1").st_ino


def _whiteout_case(case: dict, tmp_path: Path) -> tuple[Path, Path | None]:
    """Build the lower tree; symlink entries point at a real probe dir outside the tree."""
    lower = tmp_path / "lower"
    lower.mkdir()
    probe = None
    plain = []
    for entry in case["lower"]:
        if "->" in entry:
            name = entry.split("->")[0].strip()
            probe = tmp_path / "probe"
            probe.mkdir()
            (probe / "victim").write_text("host file")
            os.symlink(probe, lower / name)
        else:
            plain.append(entry)
    make_tree(lower, plain)
    return lower, probe


def _check_whiteout_result(case: dict, merged: list[str] | None, error: Exception | None,
                           lower_listing: list[str], probe: Path | None) -> None:
    expected = case["result"]
    if expected == "error":
        assert isinstance(error, ImageStoreError), f"{case['id']}: expected an error"
    elif expected == "error_or_noop":
        assert error is not None or merged == lower_listing, case["id"]
    elif expected == "no_host_delete":
        assert probe is not None and (probe / "victim").read_text() == "host file"
    else:
        assert error is None, f"{case['id']}: {error}"
        assert merged == sorted(expected), case["id"]


def test_every_whiteout_vector_apply_mode(tmp_path: Path) -> None:
    cases = _vectors()["whiteouts"]
    assert len(cases) >= 8
    for case in cases:
        work = tmp_path / case["id"]
        work.mkdir()
        lower, probe = _whiteout_case(case, work)
        lower_listing = list_tree(lower)
        error = None
        try:
            _extract(layer_from_paths(case["layer"]), lower, "apply")
        except ImageStoreError as exc:
            error = exc
        _check_whiteout_result(case, list_tree(lower), error, lower_listing, probe)


def _can_mount_overlay() -> bool:
    return os.geteuid() == 0 and "overlay" in Path("/proc/filesystems").read_text()


def _merged_listing(layer_dir: Path, lower: Path, mnt: Path, userxattr: bool) -> list[str]:
    """Mount ``layer_dir`` over ``lower`` read-only with the real overlayfs and list it."""
    mnt.mkdir()
    options = f"lowerdir={layer_dir}:{lower}" + (",userxattr" if userxattr else "")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(mnt)], check=True)
    try:
        return list_tree(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.root
@pytest.mark.parametrize("namespace", ["trusted", "user"])
def test_every_whiteout_vector_overlay_mode_real_mount(tmp_path: Path, namespace: str) -> None:
    need(_can_mount_overlay(), "root and overlayfs")
    for case in _vectors()["whiteouts"]:
        work = tmp_path / case["id"]
        work.mkdir()
        lower, probe = _whiteout_case(case, work)
        layer_dir = work / "layer"
        layer_dir.mkdir()
        error = None
        merged = None
        try:
            _extract(layer_from_paths(case["layer"]), layer_dir, "overlay", namespace)
        except ImageStoreError as exc:
            error = exc
        if error is None:
            merged = _merged_listing(layer_dir, lower, work / "mnt", namespace == "user")
        _check_whiteout_result(case, merged, error, list_tree(lower), probe)


@pytest.mark.root
def test_overlay_whiteout_hides_lower_file_in_real_mount(tmp_path: Path) -> None:
    need(_can_mount_overlay(), "root and overlayfs")
    lower = tmp_path / "lower"
    make_tree(lower, ["etc/", "etc/passwd", "etc/shadow", "keep"])
    layer = tmp_path / "layer"
    layer.mkdir()
    _extract(layer_from_paths(["etc/", "etc/.wh.shadow", "new"]), layer, "overlay")
    st = os.lstat(layer / "etc" / "shadow")
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (0, 0)
    assert _merged_listing(layer, lower, tmp_path / "mnt", False) == [
        "etc/", "etc/passwd", "keep", "new"
    ]


def test_metadata_is_preserved(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("opt")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o750, 123456
        tar.addfile(d)
        f = tarfile.TarInfo("opt/tool")
        f.mode, f.mtime, f.size, f.uid, f.gid = 0o4755, 654321, 3, 1234, 5678
        f.pax_headers = {"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.overlay.opaque": "y"}
        tar.addfile(f, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("opt/link")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "tool", 42
        tar.addfile(link)
        fifo = tarfile.TarInfo("opt/pipe")
        fifo.type, fifo.mode = tarfile.FIFOTYPE, 0o600
        tar.addfile(fifo)
    _extract(buf.getvalue(), tmp_path, "overlay")
    st = os.stat(tmp_path / "opt" / "tool")
    assert oct(st.st_mode & 0o7777) == oct(0o4755)
    assert int(st.st_mtime) == 654321
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert os.getxattr(tmp_path / "opt" / "tool", "user.note") == b"hi"
    assert "trusted.overlay.opaque" not in os.listxattr(tmp_path / "opt" / "tool")
    assert os.readlink(tmp_path / "opt" / "link") == "tool"
    assert int(os.lstat(tmp_path / "opt" / "link").st_mtime) == 42
    dst = os.stat(tmp_path / "opt")
    assert (oct(dst.st_mode & 0o777), int(dst.st_mtime)) == (oct(0o750), 123456)
    assert (tmp_path / "opt" / "pipe").is_fifo()


def test_replacing_dir_with_file_and_symlink_with_dir(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/", "a/inner", "c"])
    os.symlink("/etc", tmp_path / "b")
    data = build_tar([
        {"name": "a", "type": "reg", "data": "now a file"},
        {"name": "b", "type": "dir", "mode": "0o755"},
        {"name": "b/x", "type": "reg"},
    ])
    _extract(data, tmp_path, "apply")
    assert (tmp_path / "a").read_text() == "now a file"
    assert (tmp_path / "b").is_dir() and not (tmp_path / "b").is_symlink()
    assert not Path("/etc/x").exists()


def test_not_a_tar_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageStoreError):
        _extract(b"this is not a tar archive" * 40, tmp_path, "apply")
