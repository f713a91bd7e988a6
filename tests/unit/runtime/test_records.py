"""The runtime's record classes (no ``dataclasses``): what they write, read, compare and pickle.

The files on disk were written by the dataclass versions; these tests pin that format, so
containers created before the change still load and new files read the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nbdock.runtime import state
from nbdock.runtime.linux import userns
from nbdock.runtime.linux.cgroups import detect
from nbdock.runtime.spec import ContainerSpec, Limits, Mount, Process, valid_name

# spec.json as the dataclass ContainerSpec wrote it (json.dumps(asdict(spec), indent=1, sort_keys=True));
# written compact since, with the same keys and values.
SPEC_JSON = """{
 "annotations": {
  "k": "v"
 },
 "capabilities": [
  "CAP_CHOWN",
  "CAP_KILL"
 ],
 "hostname": "h",
 "id": "cccc",
 "layers": [
  "/l/1",
  "/l/2"
 ],
 "limits": {
  "cpus": 0.5,
  "memory_bytes": 67108864,
  "pids": 10
 },
 "mounts": [
  {
   "options": [],
   "readonly": true,
   "source": "/srv",
   "target": "/data",
   "type": "bind"
  },
  {
   "options": [
    "size=1m"
   ],
   "readonly": false,
   "source": "",
   "target": "/t",
   "type": "tmpfs"
  }
 ],
 "name": "web",
 "network": "host",
 "process": {
  "args": [
   "sh",
   "-c",
   "echo hi"
  ],
  "cwd": "/w",
  "env": [
   "A=1"
  ],
  "user": "1:2"
 },
 "readonly_rootfs": true,
 "seccomp": false,
 "stop_signal": 9
}"""

SPEC = ContainerSpec(
    id="cccc",
    process=Process(args=("sh", "-c", "echo hi"), env=("A=1",), cwd="/w", user="1:2"),
    layers=("/l/1", "/l/2"),
    name="web",
    hostname="h",
    mounts=(Mount("/data", source="/srv", readonly=True), Mount("/t", type="tmpfs", options=("size=1m",))),
    readonly_rootfs=True,
    limits=Limits(memory_bytes=64 << 20, cpus=0.5, pids=10),
    network="host",
    capabilities=("CAP_CHOWN", "CAP_KILL"),
    seccomp=False,
    stop_signal=9,
    annotations={"k": "v"},
)

# state.json as the dataclass State wrote it (json.dump(asdict(state))), and one from before
# pre-warmed containers added the "cgroup" key.
STATE_JSON = (
    '{"id": "bbbb", "name": "x", "status": "exited", "created": "", "pid": 0, "pid_start": 0, '
    '"shim_pid": 0, "shim_start": 0, "started_at": "", "finished_at": "", "exit_code": 3, '
    '"oom_killed": false, "error": "", "auto_remove": false, "cgroup": "pool-1"}'
)
OLD_STATE_JSON = (
    '{"id": "dddd", "name": "y", "status": "running", "created": "2026-11-01T00:00:00.0Z", '
    '"pid": 7, "pid_start": 8, "shim_pid": 5, "shim_start": 6, "started_at": "", '
    '"finished_at": "", "exit_code": null, "oom_killed": false, "error": "", "auto_remove": true}'
)


def test_spec_json_is_the_dataclass_format_both_ways() -> None:
    assert json.loads(SPEC.to_json()) == json.loads(SPEC_JSON)
    assert SPEC.to_json() == json.dumps(json.loads(SPEC_JSON), sort_keys=True)  # compact
    assert ContainerSpec.from_json(SPEC_JSON) == SPEC  # an indented file of an older version
    assert ContainerSpec.from_json(SPEC.to_json()) == SPEC


def test_spec_compares_hashes_and_prints_like_a_frozen_dataclass() -> None:
    same = ContainerSpec.from_json(SPEC.to_json())
    assert same == SPEC and same is not SPEC
    assert SPEC.replace(name="other") != SPEC
    assert SPEC != ("cccc",)  # not a tuple
    with pytest.raises(AttributeError, match="cannot assign to field 'name'"):
        SPEC.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):  # annotations is a dict: unhashable, as with the dataclass
        hash(SPEC)
    assert repr(SPEC).startswith("ContainerSpec(id='cccc', process=Process(args=('sh', '-c', 'echo hi'), ")
    assert repr(Mount("/a")) == "Mount(target='/a', type='bind', source='', readonly=False, options=())"
    assert hash(Limits(pids=3)) == hash(Limits(pids=3))


def test_spec_defaults_are_fresh_and_replace_keeps_the_rest() -> None:
    first = ContainerSpec(id="a", process=Process(args=("sh",)), layers=())
    second = ContainerSpec(id="b", process=Process(args=("sh",)), layers=())
    assert first.annotations == {} and first.annotations is not second.annotations
    assert first.limits == Limits() and not first.limits.any()
    renamed = first.replace(name="web")
    assert renamed.name == "web" and renamed.replace(name="") == first
    with pytest.raises(TypeError):
        first.replace(nope=1)


def test_state_files_of_every_version_load_and_save_unchanged(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(STATE_JSON)
    current = state.load(tmp_path)
    assert (current.id, current.status, current.exit_code) == ("bbbb", "exited", 3)
    assert current.cgroup_name == "pool-1"
    state.save(tmp_path, current)
    assert (tmp_path / "state.json").read_text() == STATE_JSON
    (tmp_path / "state.json").write_text(OLD_STATE_JSON)
    old = state.load(tmp_path)
    assert (old.cgroup, old.cgroup_name, old.auto_remove, old.exit_code) == ("", "dddd", True, None)


def test_state_is_mutable_compared_by_value_and_unhashable() -> None:
    record = state.State(id="e", name="z")
    other = state.State("e", "z")
    assert record == other
    other.pid = 4
    assert record != other
    with pytest.raises(AttributeError):
        record.nope = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        hash(record)
    assert repr(record).startswith("State(id='e', name='z', status='created', created='', pid=0,")


def test_id_ranges_keep_their_count_field() -> None:
    mapping = userns.IdMapping((userns.IdRange(0, 1000, 1),), (userns.IdRange(0, 1000, 1),))
    assert mapping.is_self_map and mapping.uids[0].count == 1
    assert mapping == userns.self_mapping(1000, 1000)
    assert hash(mapping) == hash(userns.self_mapping(1000, 1000))


NAMES = [
    "", "a", "ab", "a_", "a.", "a-", "_a", ".a", "-a", "web-1", "Web.2_x", "my app", "é1", "a/b",
    "a\n", "1", "12", "x" * 300, "a..b", "a\0", "ab!", "A9", "9A", "__",
]


@pytest.mark.parametrize("name", NAMES)
def test_valid_name_is_dockers_pattern(name: str) -> None:
    assert valid_name(name) == bool(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name))


def test_cgroup_layout_is_read_once_per_process() -> None:
    first = detect.detect_layout()
    assert detect.detect_layout() is first
    fresh = detect.detect_layout(refresh=True)
    assert fresh == first and fresh is not first
    assert detect.detect_layout() is fresh


def test_the_run_path_imports_neither_dataclasses_nor_the_seccomp_profile(tmp_path: Path) -> None:
    """Each costs every ``nbdock run`` milliseconds (see runtime/_plain.py, linux/seccomp.py);
    a seccomp cache hit, as every start but the first has, needs no profile."""
    from nbdock.runtime.linux import seccomp

    seccomp.cached_default_filter(["CAP_KILL"], tmp_path)  # fills the cache (compiles here)
    code = (
        "import sys, nbdock.runtime.runtime, nbdock.runtime.linux.seccomp as s; "
        f"s.cached_default_filter(['CAP_KILL'], __import__('pathlib').Path({str(tmp_path)!r})); "
        "print(sorted(m for m in ('dataclasses', 'inspect', 'pyseccomp', "
        "'nbdock.runtime.linux.seccomp_profile') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_record_class_takes_its_fields_in_slot_order() -> None:
    """``Plain`` pickles and copies through ``__init__`` with the fields in ``__slots__`` order."""
    import inspect

    import nbdock.runtime.pool  # noqa: F401 - defines record classes too
    import nbdock.runtime.runtime  # noqa: F401
    from nbdock.runtime._plain import Frozen, Plain

    classes = [c for c in _subclasses(Plain) if c is not Frozen and c.__module__.startswith("nbdock.")]
    assert len(classes) >= 12
    for cls in classes:
        parameters = list(inspect.signature(cls.__init__).parameters)[1:]
        assert tuple(parameters) == cls.__slots__, cls
