from __future__ import annotations

from pathlib import Path

import pytest

from nbdock.runtime.linux.users import UnknownUser, resolve


@pytest.fixture
def root(tmp_path: Path) -> str:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "app:x:1000:1000::/home/app:/bin/sh\n"
    )
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    ("spec", "uid", "gid", "groups", "home"),
    [
        ("", 0, 0, (0,), "/root"),
        ("root", 0, 0, (0,), "/root"),
        ("app", 1000, 1000, (50, 1000), "/home/app"),
        ("1000", 1000, 1000, (50, 1000), "/home/app"),
        ("app:staff", 1000, 50, (50,), "/home/app"),
        ("4242", 4242, 0, (0,), "/"),
        ("4242:4343", 4242, 4343, (4343,), "/"),
        ("nobody:app", 65534, 1000, (1000,), "/nonexistent"),
    ],
)
def test_resolve(root: str, spec: str, uid: int, gid: int, groups: tuple[int, ...], home: str) -> None:
    user = resolve(spec, root)
    assert (user.uid, user.gid, user.groups, user.home) == (uid, gid, groups, home)


@pytest.mark.parametrize("spec", ["ghost", "app:ghosts"])
def test_unknown_names_are_errors_like_docker(root: str, spec: str) -> None:
    with pytest.raises(UnknownUser, match="no matching entries"):
        resolve(spec, root)
