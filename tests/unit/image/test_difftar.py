"""Overlay upper dir → OCI layer tar, checked by replaying it and against a real overlay mount."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from nbdock.image.layers import diff_to_tar, extract_layer
from tests.conftest import need
from tests.unit.image._tarutil import make_tree, tar_members


def tree_state(root: Path) -> dict[str, tuple]:
    """What a user sees in a tree: type, permissions, content or link target, per path."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # a whiteout overlayfs listed but hides
                continue
            rel = str(path.relative_to(root))
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                continue
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif not stat.S_ISREG(st.st_mode):
                state[rel] = ("special", st.st_mode, st.st_rdev)
            else:
                state[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return state


def _mount(options: str, target: Path) -> None:
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)], check=True)


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True)


@pytest.mark.root
def test_real_overlay_changes_round_trip_through_a_layer_tar(tmp_path: Path) -> None:
    need(os.geteuid() == 0 and "overlay" in Path("/proc/filesystems").read_text(), "root + overlayfs")
    lower, upper, work, mnt = (tmp_path / n for n in ("lower", "upper", "work", "mnt"))
    for d in (upper, work, mnt):
        d.mkdir()
    make_tree(lower, ["a", "keep", "d/", "d/x", "d/y", "e/", "e/old", "e/sub/", "e/sub/deep"])
    _mount(f"lowerdir={lower},upperdir={upper},workdir={work}", mnt)
    try:
        (mnt / "a").write_text("changed")
        (mnt / "d" / "x").unlink()
        shutil.rmtree(mnt / "e")
        (mnt / "e").mkdir()
        (mnt / "e" / "new").write_text("fresh")
        (mnt / "h1").write_text("linked")
        os.link(mnt / "h1", mnt / "h2")
        os.symlink("a", mnt / "s")
        os.chmod(mnt / "keep", 0o600)
        (mnt / "nd").mkdir()
        (mnt / "nd" / "f").write_text("attr")
        os.setxattr(mnt / "nd" / "f", "user.test", b"\x00\xffbinary")
        expected = tree_state(mnt)
    finally:
        _umount(mnt)

    buf = io.BytesIO()
    diff_to_tar(upper, buf)
    data = buf.getvalue()
    members = {m.name: m for m in tar_members(data)}
    assert "d/.wh.x" in members and "e/.wh..wh..opq" in members
    assert members["h2"].islnk() and members["h2"].linkname == "h1"
    assert "d/y" not in members  # unchanged lower content is not in the diff
    assert not any("overlay" in k for m in members.values() for k in m.pax_headers)

    flat = tmp_path / "flat"
    shutil.copytree(lower, flat, symlinks=True)
    extract_layer(io.BytesIO(data), flat, mode="apply")
    assert tree_state(flat) == expected
    assert os.stat(flat / "h1").st_ino == os.stat(flat / "h2").st_ino
    assert os.getxattr(flat / "nd" / "f", "user.test") == b"\x00\xffbinary"

    layer = tmp_path / "layer"
    layer.mkdir()
    extract_layer(io.BytesIO(data), layer, mode="overlay")
    mnt2 = tmp_path / "mnt2"
    mnt2.mkdir()
    _mount(f"lowerdir={layer}:{lower}", mnt2)
    try:
        assert tree_state(mnt2) == expected
    finally:
        _umount(mnt2)


def _synthetic_upper(root: Path) -> None:
    """An upper dir as an unprivileged overlay (userxattr) leaves it; buildable without root."""
    make_tree(root, ["etc/", "etc/conf", "opq/", "opq/inside", "z", "b"])
    os.mknod(root / "etc" / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    os.setxattr(root / "opq", "user.overlay.opaque", b"y")
    (root / "xwh").write_bytes(b"")
    os.setxattr(root / "xwh", "user.overlay.whiteout", b"")
    os.setxattr(root / "z", "user.overlay.origin", b"junk")
    os.utime(root / "z", (4_000_000_000, 4_000_000_000))
    os.mkfifo(root / "fifo")


def test_whiteouts_opaques_and_reproducibility(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    upper = tmp_path / "upper"
    _synthetic_upper(upper)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000")
    first, second = io.BytesIO(), io.BytesIO()
    diff_to_tar(upper, first)
    diff_to_tar(upper, second)
    assert first.getvalue() == second.getvalue()
    members = tar_members(first.getvalue())
    names = [m.name for m in members]
    # depth-first, each directory sorted by the on-disk name (a whiteout sorts as what it hides)
    assert names == ["b", "etc", "etc/conf", "etc/.wh.gone", "fifo", "opq", "opq/.wh..wh..opq",
                     "opq/inside", ".wh.xwh", "z"]
    assert all(m.mtime <= 1000 for m in members)
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert not any(k.startswith("SCHILY.xattr.user.overlay") for m in members for k in m.pax_headers)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    unclamped = io.BytesIO()
    diff_to_tar(upper, unclamped)
    z = next(m for m in tar_members(unclamped.getvalue()) if m.name == "z")
    assert z.mtime == 4_000_000_000
    clamped = io.BytesIO()
    diff_to_tar(upper, clamped, epoch=5)
    assert {m.mtime for m in tar_members(clamped.getvalue())} <= set(range(6))


def test_diff_replayed_on_a_flat_tree(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    make_tree(flat, ["etc/", "etc/gone", "etc/conf", "opq/", "opq/lower-only", "xwh", "z"])
    upper = tmp_path / "upper"
    _synthetic_upper(upper)
    buf = io.BytesIO()
    diff_to_tar(upper, buf)
    extract_layer(io.BytesIO(buf.getvalue()), flat, mode="apply")
    state = tree_state(flat)
    assert "etc/gone" not in state and "xwh" not in state and "opq/lower-only" not in state
    assert state["opq/inside"][2] == b"opq/inside"
    assert (flat / "fifo").is_fifo()


@pytest.mark.root
def test_numeric_owners_are_kept(tmp_path: Path) -> None:
    need(os.geteuid() == 0, "root")
    upper = tmp_path / "upper"
    make_tree(upper, ["owned"])
    os.chown(upper / "owned", 1234, 4321)
    buf = io.BytesIO()
    diff_to_tar(upper, buf)
    (member,) = tar_members(buf.getvalue())
    assert (member.uid, member.gid, member.uname, member.gname) == (1234, 4321, "", "")
