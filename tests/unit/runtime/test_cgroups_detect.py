"""cgroup layout detection, naming and limit arithmetic: pure, no kernel needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdock.errors import InvalidArgument, UnsupportedFeature
from nbdock.runtime.linux.cgroups import PARENT_ENV, Cgroup, V1Cgroup, V2Cgroup, parent_name
from nbdock.runtime.linux.cgroups.base import (
    check_container_id,
    cpu_quota_us,
    pids_value,
    read_keyed,
    write_control,
)
from nbdock.runtime.linux.cgroups.detect import parse_mountinfo
from nbdock.runtime.spec import Limits

HYBRID = """\
24 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 24 0:25 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
28 27 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
29 27 0:27 / /sys/fs/cgroup/systemd rw,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
33 27 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
34 27 0:32 / /sys/fs/cgroup/memory rw,relatime shared:16 - cgroup cgroup rw,memory
35 27 0:33 / /sys/fs/cgroup/pids rw,relatime shared:17 - cgroup cgroup rw,pids
36 27 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:18 - cgroup cgroup rw,freezer
"""

PURE_V2 = """\
24 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 24 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
90 31 0:25 / /mnt/my\\040cgroup rw,relatime - cgroup2 cgroup2 rw
"""


def test_hybrid_layout_maps_co_mounted_controllers_and_the_unified_mount():
    layout = parse_mountinfo(HYBRID)
    assert layout.v2 == Path("/sys/fs/cgroup/unified")
    assert layout.v1["cpu"] == layout.v1["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert layout.v1["memory"] == Path("/sys/fs/cgroup/memory")
    assert "name=systemd" not in layout.v1 and "xattr" not in layout.v1
    # A co-mounted hierarchy is listed once.
    assert layout.all_mounts.count(Path("/sys/fs/cgroup/cpu,cpuacct")) == 1
    assert layout.all_mounts[-1] == Path("/sys/fs/cgroup/unified")


def test_pure_v2_layout_prefers_the_usual_mount_point():
    layout = parse_mountinfo(PURE_V2)
    assert layout.v1 == {}
    assert layout.v2 == Path("/sys/fs/cgroup")


def test_escaped_mount_points_are_decoded():
    layout = parse_mountinfo(PURE_V2.splitlines()[2] + "\n")
    assert layout.v2 == Path("/mnt/my cgroup")


def test_no_cgroup_mounts():
    layout = parse_mountinfo(HYBRID.splitlines()[0])
    assert layout.v1 == {} and layout.v2 is None and layout.all_mounts == []


def test_limit_arithmetic_follows_docker():
    assert cpu_quota_us(0.5) == 50_000
    assert cpu_quota_us(2) == 200_000
    assert cpu_quota_us(0.001) == 1_000  # the kernel's minimum quota
    assert pids_value(64) == "64"
    assert pids_value(-1) == "max"


def test_parent_name_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert parent_name() == "nbdock"
    monkeypatch.setenv(PARENT_ENV, "nbdock-test-42")
    assert parent_name() == "nbdock-test-42"
    for bad in ("/abs", "../escape", "a/../b"):
        monkeypatch.setenv(PARENT_ENV, bad)
        with pytest.raises(InvalidArgument):
            parent_name()


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "x\0y"])
def test_container_ids_cannot_leave_the_parent(bad: str):
    with pytest.raises(InvalidArgument):
        check_container_id(bad)


def test_both_backends_satisfy_the_interface():
    v1 = V1Cgroup("c1", Limits(), {"memory": Path("/nonexistent")})
    v2 = V2Cgroup("c1", Limits(), Path("/nonexistent"))
    assert isinstance(v1, Cgroup) and isinstance(v2, Cgroup)
    assert v1.paths() == [] and v2.paths() == []
    assert not v1.is_populated() and not v2.is_populated()


def test_v1_limit_on_an_unmounted_controller_names_it():
    cgroup = V1Cgroup("c1", Limits(pids=10), {"memory": Path("/nonexistent")})
    with pytest.raises(UnsupportedFeature, match=r"--pids-limit.*'pids' is not mounted"):
        cgroup.create()


def test_v2_limit_without_the_controller_names_controller_and_mount(tmp_path: Path):
    (tmp_path / "cgroup.controllers").write_text("cpu io\n")
    cgroup = V2Cgroup("c1", Limits(memory_bytes=32 << 20), tmp_path)
    with pytest.raises(UnsupportedFeature, match=r"'memory'.*" + str(tmp_path)):
        cgroup.create()
    assert not (tmp_path / "nbdock").exists()  # refused before anything was made


def test_a_missing_control_file_is_an_unsupported_controller(tmp_path: Path):
    with pytest.raises(UnsupportedFeature, match=r"'memory'.*memory\.max does not exist"):
        write_control(tmp_path / "memory.max", "1", "memory")


def test_keyed_files_are_parsed(tmp_path: Path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert read_keyed(tmp_path / "memory.events")["oom_kill"] == 1
    assert read_keyed(tmp_path / "absent") == {}
