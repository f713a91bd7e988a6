"""Layer tars are written fast but exactly as ``tarfile`` writes them (same bytes, same ids)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import BinaryIO

import pytest

from nbdock.build.layertar import header, new_info, open_tar, store_layer
from nbdock.image.store import ImageStore


@pytest.mark.parametrize(("name", "kind", "mode", "uid", "size", "link", "mtime"), [
    ("etc/passwd", tarfile.REGTYPE, 0o644, 0, 1234, "", 0),
    ("usr/local/bin", tarfile.DIRTYPE, 0o755, 1000, 0, "", 1_700_000_000),
    ("bin/sh", tarfile.SYMTYPE, 0o777, 0, 0, "/bin/busybox", 0),
    ("run/fifo", tarfile.FIFOTYPE, 0o600, 5, 0, "", 0),
    ("d" * 98 + "/x", tarfile.REGTYPE, 0o600, 0, 1, "", 0),  # too long: PAX path record
    ("caf\u00e9.txt", tarfile.REGTYPE, 0o644, 0, 3, "", 0),  # non-ASCII: PAX path record
    ("big.bin", tarfile.REGTYPE, 0o644, 0, 9 * 8**10, "", 0),  # over 8 GiB: PAX size
    ("uid.txt", tarfile.REGTYPE, 0o644, 3_000_000, 0, "", 0),  # uid over 2097151: PAX
])
def test_header_is_tarfiles_pax_header(name: str, kind: bytes, mode: int, uid: int, size: int,
                                       link: str, mtime: int) -> None:
    info = new_info(name, kind, mode, uid, uid, mtime)
    info.size, info.linkname = size, link
    assert header(info) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_a_written_header_reads_back() -> None:
    info = new_info("app/main.py", tarfile.REGTYPE, 0o640, 7, 8, 0)
    info.size = 5
    data = header(info) + b"print" + b"\0" * 507 + b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        [member] = tar.getmembers()
        assert (member.name, member.mode, member.uid, member.gid) == ("app/main.py", 0o640, 7, 8)
        assert tar.extractfile(member).read() == b"print"  # type: ignore[union-attr]


def test_store_layer_hands_the_finished_file_to_the_store(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "image")
    written: list[bytes] = []

    def write(out: BinaryIO) -> None:
        with open_tar(out) as tar:
            info = new_info("big", tarfile.REGTYPE, 0o644, 0, 0, 0)
            data = os.urandom(1 << 20)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        out.flush()
        written.append(Path(f"/proc/self/fd/{out.fileno()}").read_bytes())

    layer = store_layer(store, write)
    assert store.blobs.path(layer.digest).read_bytes() == written[0]
    assert layer.size == len(written[0]) and store.has_layer(layer.diff_id)
    assert list(store.temp.path.iterdir()) == []

    def broken(out: BinaryIO) -> None:
        out.write(b"\0" * 512)
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        store_layer(store, broken)
    assert list(store.temp.path.iterdir()) == [] and store.blobs.all_digests() == [layer.digest]
