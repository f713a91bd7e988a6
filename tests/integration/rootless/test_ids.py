"""Rootless id mapping: subordinate ranges through newuidmap, the self map, and cleaning up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbdock.runtime.linux import userns
from tests.conftest import need
from tests.integration.conftest import run_output
from tests.integration.rootless._support import only_without_root

pytestmark = pytest.mark.rootless
only_without_root()


def _subordinate_mapping() -> userns.IdMapping:
    mapping = userns.current_mapping()
    need(not mapping.is_self_map,
         "a subuid/subgid range for this user and newuidmap/newgidmap (run.sh configures both)")
    return mapping


def test_other_users_work_with_subordinate_ids(rootless_client, tmp_path: Path) -> None:
    mapping = _subordinate_mapping()
    volume = tmp_path / "shared"
    volume.mkdir(mode=0o777)
    volume.chmod(0o777)  # uid 1000 inside is a subordinate uid outside: let it write
    out = run_output(
        rootless_client, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map | wc -l; "
        "mkdir -m 700 /data/private && echo secret > /data/private/file && echo wrote",
        user="1000:1000", volumes=[f"{volume}:/data"],
    )
    assert out.split() == ["1000", "1000", str(len(mapping.uids)), "wrote"]
    made = volume / "private"
    expected_uid = next(r.outside + 1000 - r.inside for r in mapping.uids
                        if r.inside <= 1000 < r.inside + r.count)
    assert made.stat().st_uid == expected_uid
    with pytest.raises(PermissionError):
        (made / "file").read_text()  # the caller is not that subordinate uid on the host
    # ...but root of a user namespace with the same maps is, so removal still works.
    userns.remove_tree(volume)
    assert not volume.exists()


def test_exec_takes_subordinate_ids_too(rootless_client) -> None:
    _subordinate_mapping()
    container = rootless_client.containers.run("busybox", ["sleep", "60"], detach=True, user="1000")
    try:
        assert container.exec_run(["id", "-u"]).output == b"1000\n"
        assert container.exec_run(["id", "-u"], user="0").output == b"0\n"
        assert container.exec_run(["id", "-G"], user="1000:1000").output == b"1000\n"
    finally:
        container.remove(force=True)


def test_files_of_subordinate_ids_are_removed_with_the_container(rootless_client) -> None:
    _subordinate_mapping()
    container = rootless_client.containers.run(
        "busybox", ["sh", "-c", "mkdir -m 500 /home/u && touch /home/u/f; chown -R 1000 /home/u"],
        detach=True,
    )
    assert container.wait()["StatusCode"] == 0
    directory = rootless_client.engine.runtime.paths(container.id).directory
    assert (Path(directory) / "upper" / "home" / "u").stat().st_uid != os.getuid()
    container.remove()
    assert not Path(directory).exists()
    assert not list(Path(rootless_client.engine.runtime.root).glob(f".removing-{container.id}"))


def test_self_map_has_only_root(rootless_client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(userns.SUBIDS_ENV, "0")
    out = run_output(rootless_client, "sh", "-c", "cat /proc/self/uid_map; cat /proc/self/setgroups")
    lines = out.splitlines()
    assert lines[0].split() == ["0", str(os.getuid()), "1"]
    assert lines[1:] == ["deny"]
    container = rootless_client.containers.run("busybox", ["id"], user="1000", detach=True)
    result = container.wait()
    assert result["StatusCode"] == 125
    assert "user 1000:0 is not mapped" in result["Error"]["Message"]
    assert b"is not mapped in this rootless container" in container.logs()
    container.remove()
