"""User namespace mapping: subuid parsing and map text (pure), and real namespaces from the kernel."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nbdock.runtime.linux import libc, userns
from tests.conftest import need

SUBUID = """\
# comment line
alice:100000:65536
1001:300000:1000
bob:165536:65536
alice:500000:0
broken line
alice:x:10
"""


def test_parse_subids_matches_name_or_uid_and_skips_junk() -> None:
    assert userns.parse_subids(SUBUID, "alice", 1001) == [(100000, 65536), (300000, 1000)]
    assert userns.parse_subids(SUBUID, "bob", 1002) == [(165536, 65536)]
    assert userns.parse_subids(SUBUID, "carol", 1003) == []


def test_mapping_with_ranges_puts_the_caller_at_root_and_ranges_after() -> None:
    mapping = userns.mapping_for(1001, 1001, "alice", SUBUID, "alice:200000:65536\n", helpers=True)
    assert mapping.uid_map() == "0 1001 1\n1 100000 65536\n65537 300000 1000\n"
    assert mapping.gid_map() == "0 1001 1\n1 200000 65536\n"
    assert not mapping.is_self_map
    assert mapping.maps_uid(1000) and mapping.maps_uid(66536) and not mapping.maps_uid(66537)


@pytest.mark.parametrize(
    ("subgid", "helpers"), [("alice:200000:65536\n", False), ("", True)], ids=["no-helpers", "no-subgid"]
)
def test_without_helpers_or_both_ranges_only_the_self_map(subgid: str, helpers: bool) -> None:
    mapping = userns.mapping_for(1001, 1002, "alice", SUBUID, subgid, helpers=helpers)
    assert mapping == userns.self_mapping(1001, 1002)
    assert mapping.is_self_map
    assert (mapping.uid_map(), mapping.gid_map()) == ("0 1001 1\n", "0 1002 1\n")
    assert not mapping.maps_uid(1)


def test_environment_switch_forces_the_self_map(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(userns.SUBIDS_ENV, "0")
    assert userns.current_mapping() == userns.self_mapping(os.getuid(), os.getgid())


def _in_child(body: Callable[[], dict]) -> dict:
    """Run ``body`` in a forked child (it may unshare freely) and return what it reports."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            result = body()
        except BaseException as error:  # noqa: BLE001 - the child must never unwind into pytest
            result = {"error": f"{type(error).__name__}: {error}"}
        os.write(write_fd, json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 65536):
        data += chunk
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(data)


def _userns_possible() -> bool:
    return "error" not in _in_child(lambda: libc.unshare(libc.CLONE_NEWUSER) or {})


def test_self_map_makes_the_caller_root_in_a_new_namespace() -> None:
    need(_userns_possible(), "user namespaces")
    uid, gid = os.getuid(), os.getgid()

    def body() -> dict:
        userns.unshare_mapped(userns.self_mapping(uid, gid), libc.CLONE_NEWPID)
        with open("/proc/self/uid_map") as handle:
            uid_map = handle.read().split()
        return {
            "ids": [os.getuid(), os.getgid()], "uid_map": uid_map,
            "denied": _setgroups_denied(), "ns": os.readlink("/proc/self/ns/user"),
        }

    report = _in_child(body)
    assert report.pop("ns") != os.readlink("/proc/self/ns/user")
    assert report == {"ids": [0, 0], "uid_map": ["0", str(uid), "1"], "denied": True}
    assert userns.same_user_namespace(os.getpid())
    assert not _setgroups_denied()


def test_root_writes_a_wide_map_from_the_parent_namespace() -> None:
    need(os.geteuid() == 0, "root (others need newuidmap and a subuid range for this)")
    mapping = userns.IdMapping(
        (userns.IdRange(0, 0, 1), userns.IdRange(1, 200000, 65536)),
        (userns.IdRange(0, 0, 1), userns.IdRange(1, 200000, 65536)),
    )
    go_r, go_w = os.pipe()

    def body() -> dict:
        os.close(go_w)
        libc.unshare(libc.CLONE_NEWUSER)
        os.read(go_r, 1)  # the parent has written the maps
        os.setgid(1000)
        os.setuid(1000)
        with open("/proc/self/uid_map") as handle:
            return {"lines": handle.read().split("\n")[:2], "ids": [os.getuid(), os.getgid()]}

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            result = body()
        except BaseException as error:  # noqa: BLE001
            result = {"error": repr(error)}
        os.write(write_fd, json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    os.close(go_r)
    # Wait until the child is in its namespace: its ns/user link changes.
    while os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user"):
        os.sched_yield()
    userns.write_maps(pid, mapping)
    os.write(go_w, b"1")
    os.close(go_w)
    report = json.loads(os.read(read_fd, 65536))
    os.close(read_fd)
    os.waitpid(pid, 0)
    assert report["ids"] == [1000, 1000]
    assert [line.split() for line in report["lines"]] == [["0", "0", "1"], ["1", "200000", "65536"]]


def test_remove_tree_removes_what_the_owner_may_not_enter(tmp_path: Path) -> None:
    need(os.geteuid() == 0 or _userns_possible(), "root or user namespaces")
    locked = tmp_path / "tree" / "locked"
    (locked / "deeper").mkdir(parents=True)
    (locked / "deeper" / "file").write_text("x")
    (locked / "deeper").chmod(0o500)
    locked.chmod(0o000)
    userns.remove_tree(tmp_path / "tree")
    assert not (tmp_path / "tree").exists()


def _setgroups_denied() -> bool:
    """A self-mapped namespace's setgroups is "deny" (nbdock-init then keeps the groups as they are)."""
    with open("/proc/self/setgroups") as handle:
        return handle.read().strip() == "deny"
