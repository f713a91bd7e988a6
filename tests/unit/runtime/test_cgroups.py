"""Container cgroups on the real kernel, as root.

Which backends run depends on the host, decided at collection time from /proc/self/mountinfo:
- ``host``: whatever ``open_cgroup`` picks (v1 with the hybrid unified mount here; v2 on a pure
  v2 host) — the limits tests (memory, pids, cpu) run on it;
- ``v1-freezer``: the v1 backend without the unified mount, so killing goes through the
  freezer loop (hosts with v1 memory + freezer);
- ``v2`` / ``v2-freeze``: the v2 backend on the cgroup2 mount, killing through ``cgroup.kill``
  or through the ``cgroup.freeze`` fallback. On a hybrid host that mount has no controllers,
  so only the controller-free parts run there (see nbdock/runtime/linux/cgroups/v2.py).
Every cgroup lives under ``nbdock-test-<pid>``, removed at the end of each test.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbdock.errors import RuntimeFailure, UnsupportedFeature
from nbdock.runtime.linux.cgroups import (
    PARENT_ENV,
    Cgroup,
    V1Cgroup,
    V2Cgroup,
    cgroups_available,
    detect_layout,
    leftover_container_ids,
    open_cgroup,
    remove_parent,
)
from nbdock.runtime.linux.cgroups.base import read_text, tree_pids, wait_for
from nbdock.runtime.linux.cgroups.v2 import freeze_and_kill
from nbdock.runtime.spec import Limits
from tests.conftest import need

MiB = 1 << 20
LAYOUT = detect_layout()
HAS_V1 = "memory" in LAYOUT.v1
V2_CONTROLLERS = (
    set((read_text(LAYOUT.v2 / "cgroup.controllers") or "").split()) if LAYOUT.v2 else set()
)

KILL_BACKENDS = ["host"]
if HAS_V1 and "freezer" in LAYOUT.v1:
    KILL_BACKENDS.append("v1-freezer")
if HAS_V1 and LAYOUT.v2 is not None:  # on a pure v2 host "host" already is the v2 backend
    KILL_BACKENDS.append("v2")
if LAYOUT.v2 is not None:
    KILL_BACKENDS.append("v2-freeze")


@pytest.fixture
def cgroup_parent(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    need(os.geteuid() == 0, "root")
    need(cgroups_available(), "a writable cgroup filesystem")
    name = f"nbdock-test-{os.getpid()}"
    monkeypatch.setenv(PARENT_ENV, name)
    yield name
    for cid in leftover_container_ids():  # whatever a failing test left behind
        open_cgroup(cid, Limits()).destroy()
    assert remove_parent() == []


@pytest.fixture
def spawn(cgroup_parent: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a child that waits for a line on stdin, so it can join a cgroup first."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe:
                pipe.close()


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", "import sys\nsys.stdin.readline()\n" + code)


def release(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    proc.stdin.flush()


def read_line(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "child printed nothing"
    return proc.stdout.readline().decode()


def gone(pid: int) -> bool:
    """Exited: no /proc entry, or a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def new_id() -> str:
    return uuid.uuid4().hex


def make(kind: str, limits: Limits) -> Cgroup:
    cid = new_id()
    if kind == "v1-freezer":
        return V1Cgroup(cid, limits, LAYOUT.v1, unified=None)
    if kind in ("v2", "v2-freeze"):
        assert LAYOUT.v2 is not None
        return V2Cgroup(cid, limits, LAYOUT.v2)
    return open_cgroup(cid, limits)


def control(cgroup: Cgroup, name: str) -> str:
    """The value of a control file in whichever of the container's directories has it."""
    for path in cgroup.paths():
        if (path / name).exists():
            return (path / name).read_text().strip()
    raise AssertionError(f"no {name} in {cgroup.paths()}")


# --------------------------------------------------------------------------- limits
def test_memory_hog_is_oom_killed_and_the_caller_is_not(spawn):
    cgroup = open_cgroup(new_id(), Limits(memory_bytes=32 * MiB))
    cgroup.create()
    hog = spawn(*python("b = b'x' * (200 << 20)\nprint('survived', flush=True)"))
    cgroup.add_process(hog.pid)
    release(hog)
    assert hog.wait(timeout=20) == -signal.SIGKILL
    assert cgroup.oom_killed()
    assert cgroup.stats().memory_limit_bytes == 32 * MiB
    # The test process is outside the cgroup and can still use more than the limit.
    assert cgroup.container_id not in Path("/proc/self/cgroup").read_text()
    mine = bytearray(64 * MiB)
    mine[::4096] = b"y" * len(mine[::4096])
    assert mine[-4096] == ord("y")
    cgroup.destroy()
    assert cgroup.paths() == []


FORK_BOMB = """
import os, time
made = failed = 0
for _ in range(300):
    try:
        pid = os.fork()
    except BlockingIOError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    made += 1
print(made, failed, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("kind", [k for k in KILL_BACKENDS if k in ("host", "v1-freezer")])
def test_fork_bomb_stops_at_the_pids_limit(spawn, kind: str):
    cgroup = make(kind, Limits(pids=64))
    cgroup.create()
    bomb = spawn(*python(FORK_BOMB))
    cgroup.add_process(bomb.pid)
    release(bomb)
    made, failed = map(int, read_line(bomb).split())
    assert made <= 63 and failed > 0  # 64 tasks: the bomb itself and 63 children
    assert made + 1 == cgroup.stats().pids_current <= 64
    assert subprocess.run(["true"], check=False).returncode == 0  # the host still forks
    cgroup.kill_all()
    assert wait_for(lambda: not cgroup.is_populated(), 10)
    assert bomb.wait(timeout=10) == -signal.SIGKILL
    cgroup.destroy()


def test_cpu_quota_files_and_stats_of_a_running_process(spawn):
    limits = Limits(memory_bytes=64 * MiB, cpus=0.5, pids=32)
    cgroup = open_cgroup(new_id(), limits)
    cgroup.create()
    if isinstance(cgroup, V1Cgroup):
        assert control(cgroup, "cpu.cfs_period_us") == "100000"
        assert control(cgroup, "cpu.cfs_quota_us") == "50000"
        assert control(cgroup, "memory.limit_in_bytes") == str(64 * MiB)
        if any((p / "memory.memsw.limit_in_bytes").exists() for p in cgroup.paths()):
            assert control(cgroup, "memory.memsw.limit_in_bytes") == str(64 * MiB)
    else:
        assert control(cgroup, "cpu.max") == "50000 100000"
        assert control(cgroup, "memory.max") == str(64 * MiB)
        if any((p / "memory.swap.max").exists() for p in cgroup.paths()):
            assert control(cgroup, "memory.swap.max") == "0"
    assert control(cgroup, "pids.max") == "32"

    busy = spawn(*python("b = b'y' * (8 << 20)\nwhile True:\n    pass"))
    cgroup.add_process(busy.pid)
    release(busy)
    assert wait_for(lambda: cgroup.stats().cpu_usage_ns > 50_000_000, 10)
    stats = cgroup.stats()
    assert 8 * MiB <= stats.memory_bytes < 64 * MiB
    assert stats.memory_limit_bytes == 64 * MiB
    assert stats.pids_current == 1
    assert cgroup.is_populated() and not cgroup.oom_killed()
    cgroup.destroy()
    assert busy.wait(timeout=10) == -signal.SIGKILL


# --------------------------------------------------------------------------- kill, destroy
# Eight sleepers, then a loop that keeps forking: the kill must win a race against new pids.
TREE = (
    "read x; for i in 1 2 3 4 5 6 7 8; do sleep 60 & done; while :; do sleep 60 & sleep .05; done"
)


@pytest.mark.parametrize("kind", KILL_BACKENDS)
def test_kill_all_kills_every_process_and_destroy_removes_every_dir(spawn, kind: str):
    cgroup = make(kind, Limits())
    cgroup.create()
    paths = cgroup.paths()
    assert paths and all(p.is_dir() for p in paths)
    shell = spawn("sh", "-c", TREE)
    cgroup.add_process(shell.pid)
    release(shell)
    assert wait_for(lambda: len(tree_pids(paths)) >= 10, 10)
    assert cgroup.is_populated()
    seen = tree_pids(paths)
    if kind == "v2-freeze":
        freeze_and_kill(paths[0])
    else:
        cgroup.kill_all()
    assert wait_for(lambda: not cgroup.is_populated(), 10)
    assert shell.wait(timeout=10) == -signal.SIGKILL
    assert wait_for(lambda: all(gone(pid) for pid in seen), 10)
    cgroup.destroy()
    assert not any(p.exists() for p in paths)
    cgroup.destroy()  # idempotent


def test_leftovers_are_found_until_destroyed(cgroup_parent: str):
    cgroup = open_cgroup(new_id(), Limits())
    cgroup.create()
    assert cgroup.container_id in leftover_container_ids()
    assert all(p.parent.name == cgroup_parent for p in cgroup.paths())
    # A restarted engine knows only the id: that is enough to remove every directory.
    open_cgroup(cgroup.container_id, Limits()).destroy()
    assert cgroup.container_id not in leftover_container_ids()
    assert cgroup.paths() == []


def test_joining_with_an_exited_pid_fails_clearly(spawn):
    cgroup = open_cgroup(new_id(), Limits())
    cgroup.create()
    done = spawn("true")
    done.wait(timeout=10)
    with pytest.raises(RuntimeFailure, match="exited before it joined"):
        cgroup.add_process(done.pid)
    cgroup.destroy()


def test_an_unprivileged_caller_gets_a_clear_unsupported_error(cgroup_parent: str):
    """A child that dropped to nobody sees what a rootless engine sees: no cgroups, clearly."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            report = f"available={cgroups_available()}\n"
            try:
                open_cgroup(new_id(), Limits(memory_bytes=32 * MiB)).create()
                report += "created"
            except UnsupportedFeature as exc:
                report += f"UnsupportedFeature: {exc}"
            os.write(write_end, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    assert os.waitpid(pid, 0)[1] == 0
    assert report.startswith("available=False\n")
    assert "UnsupportedFeature: cannot create cgroup " in report
    assert cgroup_parent in report and "Permission denied" in report


# --------------------------------------------------------------------------- v2 on the mount
def test_v2_backend_without_limits_runs_and_reports(spawn):
    need(LAYOUT.v2 is not None, "a cgroup2 mount")
    cgroup = make("v2", Limits())
    cgroup.create()
    busy = spawn(*python("while True:\n    pass"))
    cgroup.add_process(busy.pid)
    release(busy)
    assert cgroup.is_populated()
    assert wait_for(lambda: cgroup.stats().cpu_usage_ns > 20_000_000, 10)  # cpu.stat is core
    assert cgroup.stats().pids_current == 1
    assert not cgroup.oom_killed()
    cgroup.destroy()
    assert busy.wait(timeout=10) == -signal.SIGKILL
    assert cgroup.paths() == []


# Only a hybrid host's cgroup2 mount lacks controllers; elsewhere this list is empty.
CONTROLLERLESS = [c for c in ("memory", "cpu", "pids") if LAYOUT.v2 and c not in V2_CONTROLLERS]


@pytest.mark.parametrize("controller", CONTROLLERLESS)
def test_v2_limit_on_a_mount_without_the_controller_is_refused(cgroup_parent, controller: str):
    limits = {"memory": Limits(memory_bytes=32 * MiB), "cpu": Limits(cpus=0.5)}
    cgroup = make("v2", limits.get(controller, Limits(pids=64)))
    with pytest.raises(UnsupportedFeature, match=rf"'{controller}'.*{LAYOUT.v2}"):
        cgroup.create()
    assert cgroup.paths() == []
