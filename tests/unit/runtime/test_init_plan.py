"""The plan the supervisor sends nbdock-init (runtime/native/), read back record by record.

The C side is exercised by every integration test; these pin the wire format both sides share
(tag, little-endian u32 length, bytes), the two-part split a pre-warmed init relies on, and what
the Python side decides before sending (environment, layer order, policy lists from spec.py).
"""

from __future__ import annotations

import struct

from nbdock.runtime import init
from nbdock.runtime.linux import libc
from nbdock.runtime.spec import DEVICES, MASKED_PATHS, READONLY_PATHS, ContainerSpec, Mount, Process


def _records(data: bytes) -> list[tuple[str, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        tag, length = struct.unpack_from("<cI", data, pos)
        out.append((tag.decode(), data[pos + 5:pos + 5 + length]))
        pos += 5 + length
    assert pos == len(data), "trailing bytes: a record's length is wrong"
    return out


def _values(records: list[tuple[str, bytes]], tag: str) -> list[bytes]:
    return [value for t, value in records if t == tag]


def _plan(**spec_changes) -> init.InitPlan:  # noqa: ANN003
    spec = ContainerSpec(
        id="c" * 64,
        process=Process(args=("sh", "-c", "echo hi"), env=("A=1", "B=2", "A=3", "NOEQUALS"),
                        cwd="/work", user="app:staff"),
        layers=("/layers/base", "/layers/top"),
        hostname="box",
        **spec_changes,
    )
    return init.InitPlan(
        spec=spec, rootfs="/c/rootfs", upper="/c/upper", work="/c/work",
        etc_files={"/etc/hosts": ("/c/etc/hosts", "127.0.0.1\tlocalhost\n")}, cap_last=40, in_userns=False,
        seccomp_filter=None, unshare_flags=init_flags(),
    )


def init_flags() -> int:
    return libc.CLONE_NEWNS | libc.CLONE_NEWNET | libc.CLONE_NEWCGROUP


def test_the_first_part_is_length_prefixed_and_ends_with_a_dot(monkeypatch) -> None:
    monkeypatch.delenv("NBDOCK_TRACE", raising=False)
    part = init.isolation_part(init_flags())
    (length,) = struct.unpack_from("<I", part)
    records = _records(part[4:])
    assert length == len(part) - 4
    assert records == [("U", str(init_flags()).encode()), ("L", b""), (".", b"")]


def test_no_loopback_without_a_network_namespace_and_a_trace_file_when_asked(monkeypatch) -> None:
    monkeypatch.setenv("NBDOCK_TRACE", "/tmp/trace-file")
    records = _records(init.isolation_part(libc.CLONE_NEWNS)[4:])
    assert [tag for tag, _ in records] == ["U", "T", "."]
    assert _values(records, "T") == [b"/tmp/trace-file"]


def test_layers_go_top_most_first_and_policy_lists_come_from_spec() -> None:
    records = _records(init.container_part(_plan()))
    assert _values(records, "l") == [b"/layers/top", b"/layers/base"]
    assert _values(records, "m") == [path.encode() for path in MASKED_PATHS]
    assert _values(records, "r") == [path.encode() for path in READONLY_PATHS]
    assert [value.split(b"\0")[0].decode() for value in _values(records, "d")] == [
        name for name, _major, _minor in DEVICES
    ]
    assert _values(records, "e") == [b"/etc/hosts\0/c/etc/hosts\x00127.0.0.1\tlocalhost\n"]
    assert _values(records, "k") == [b""]  # root: device nodes may be made, not bound
    assert _values(records, "x") == []


def test_environment_is_dockers_last_wins_without_bare_names_and_with_hostname() -> None:
    records = _records(init.container_part(_plan()))
    assert _values(records, "v") == [b"A=3", b"B=2", b"HOSTNAME=box"]
    assert _values(records, "a") == [b"sh", b"-c", b"echo hi"]
    assert _values(records, "G") == [b"app:staff"]
    assert _values(records, "W") == [b"/work"]


def test_volumes_carry_type_source_target_mode_and_options() -> None:
    plan = _plan(mounts=(Mount("/data", source="/srv", readonly=True),
                         Mount("/t", type="tmpfs", options=("size=1m", "mode=0700"))))
    volumes = _values(_records(init.container_part(plan)), "V")
    assert volumes == [b"bind\0/srv\0/data\x001\0", b"tmpfs\0\0/t\x000\0size=1m,mode=0700"]


def test_exec_plan_makes_nothing_new_and_names_what_to_join() -> None:
    spec = _plan().spec
    data = init.exec_plan(spec, spec.process, 40, None,
                          join=(4242, ["ipc", "mnt"], ["/sys/fs/cgroup/x/cgroup.procs"]))
    first_length = struct.unpack_from("<I", data)[0]
    first = _records(data[4:4 + first_length])
    rest = _records(data[4 + first_length:])
    assert _values(first, "U") == [b"0"]
    assert {tag for tag, _ in rest} == {"J", "N", "P", "G", "W", "K", "Z", "a", "v"}
    assert _values(rest, "J") == [b"4242"]
    assert _values(rest, "N") == [b"ipc", b"mnt"]  # in joining order
    assert _values(rest, "P") == [b"/sys/fs/cgroup/x/cgroup.procs"]


def test_the_exec_marker_and_a_report_after_it() -> None:
    assert init.read_report(init.EXEC_MARKER) is None
    report = init.read_report(init.EXEC_MARKER + b'{"message": "exec: nope", "exit_code": 127}')
    assert report == {"message": "exec: nope", "exit_code": 127}
