from __future__ import annotations

import io
import tarfile
from pathlib import Path

from nbdock.image.layerfiles import replay


def _tar(path: Path, entries: list[tuple[str, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def test_added_changed_removed_and_opaque(tmp_path: Path) -> None:
    base = _tar(tmp_path / "1.tar", [("etc/", None), ("etc/a", b"aa"), ("etc/b", b"b"),
                                     ("srv/", None), ("srv/x", b"xxx")])
    top = _tar(tmp_path / "2.tar", [("etc/", None), ("etc/a", b"AAAA"), ("etc/.wh.b", b""),
                                    ("srv/", None), ("srv/.wh..wh..opq", b""), ("srv/y", b"y"),
                                    ("new.txt", b"hello")])
    first, second = replay([("sha256:1", base), ("sha256:2", top)])
    assert first.added == [("etc", 0), ("etc/a", 2), ("etc/b", 1), ("srv", 0), ("srv/x", 3)]
    assert second.changed == [("etc/a", 4)]
    assert second.removed == ["etc/b", "srv/*"]
    assert second.added == [("srv/y", 1), ("new.txt", 5)]
    assert second.to_json()["layer"] == "sha256:2"
