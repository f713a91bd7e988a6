from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbdock.errors import Conflict, InvalidArgument
from nbdock.runtime import logs, state
from nbdock.runtime.spec import ContainerSpec, Limits, Mount, Process, validate


def _spec(**changes) -> ContainerSpec:
    base = {"id": "a" * 64, "process": Process(args=("sh",)), "layers": ("/l1", "/l2")}
    base.update(changes)
    return ContainerSpec(**base)


def test_spec_json_round_trip() -> None:
    spec = _spec(
        mounts=(Mount(target="/data", source="/srv", readonly=True),
                Mount(target="/t", type="tmpfs", options=("size=1m",))),
        limits=Limits(memory_bytes=32 << 20, cpus=0.5, pids=10),
        annotations={"image.ref": "busybox"},
    )
    assert ContainerSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"process": Process(args=())}, "no command"),
        ({"process": Process(args=("sh",), cwd="rel")}, "not absolute"),
        ({"mounts": (Mount(target="rel", source="/x"),)}, "not an absolute path"),
        ({"mounts": (Mount(target="/", source="/x"),)}, "root directory"),
        ({"mounts": (Mount(target="/x", source="rel"),)}, "absolute host path"),
        ({"limits": Limits(memory_bytes=1024)}, "6MB"),
        ({"limits": Limits(cpus=0)}, "positive"),
        ({"hostname": "bad host!"}, "invalid hostname"),
    ],
)
def test_validation_names_the_rule(changes: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        validate(_spec(**changes))


def test_state_machine_refuses_impossible_transitions(tmp_path: Path) -> None:
    record = state.State(id="b" * 64, name="x")
    record.transition("running")
    with pytest.raises(Conflict):
        record.transition("created")
    state.save(tmp_path, record)
    assert state.load(tmp_path) == record


def test_liveness_uses_start_time_against_pid_reuse() -> None:
    me = os.getpid()
    start = state.process_start_time(me)
    assert start is not None
    assert state.is_alive(me, start)
    assert not state.is_alive(me, start + 1)


def test_log_records_survive_arbitrary_chunking(tmp_path: Path) -> None:
    frames = [logs.frame(logs.STDOUT, b"hello\n", 1), logs.frame(logs.STDERR, b"", 2),
              logs.event_frame(event="exited", exit_code=3), logs.frame(logs.STDERR, b"x" * 70000, 4)]
    raw = b"".join(frames)
    reader = logs.RecordReader()
    records = []
    for i in range(0, len(raw), 7):
        records.extend(reader.feed(raw[i:i + 7]))
    assert [r.stream for r in records] == [1, 2, 0, 2]
    assert records[0].data == b"hello\n"
    assert records[2].event() == {"event": "exited", "exit_code": 3}
    path = tmp_path / "log"
    path.write_bytes(raw[:-10])  # a record still being written is not returned
    complete, offset = logs.read_log(str(path))
    assert len(complete) == 3
    path.write_bytes(raw)
    rest, _ = logs.read_log(str(path), offset)
    assert len(rest) == 1 and len(rest[0].data) == 70000
