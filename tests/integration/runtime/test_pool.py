"""Pre-warmed containers (runtime/pool.py): what differs from a direct start is only *when* each
step runs, so these tests check what the pool adds — the hand-over, limits applied after the
cgroup was joined, fresh namespaces per container, clean retirement, crash recovery."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nbdock.runtime import state
from nbdock.runtime.linux.cgroups import leftover_container_ids
from nbdock.runtime.plan import POOL_CGROUP_PREFIX as CGROUP_PREFIX


@pytest.fixture
def pooled(client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: ANN001
    """The session client, starting through its fork server with a pre-warmed container ready."""
    monkeypatch.setenv("NBDOCK_FORKSERVER", "always")
    monkeypatch.delenv("NBDOCK_POOL", raising=False)
    client.engine.runtime.prewarm()
    yield client


def _launches(client) -> int:  # noqa: ANN001
    return client.engine.runtime._forkserver.pooled_launches


def _pool_cgroups() -> set[str]:
    return {name for name in leftover_container_ids() if name.startswith(CGROUP_PREFIX)}


def _wait_for(predicate, what: str, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_a_pre_warmed_start_records_its_pool_cgroup(pooled) -> None:
    before = _launches(pooled)
    container = pooled.containers.run("busybox", ["sleep", "30"], detach=True)
    try:
        assert _launches(pooled) == before + 1
        recorded = pooled.engine.runtime.state(container.id)
        assert recorded.cgroup.startswith(CGROUP_PREFIX)
        assert recorded.cgroup in leftover_container_ids()
        # The container's PID 1 is in that cgroup, seen from the host.
        with open(f"/proc/{recorded.pid}/cgroup") as handle:
            assert recorded.cgroup in handle.read()
        assert container.status == "running"
        assert pooled.containers.get(container.id).attrs["State"]["Pid"] == recorded.pid
        # Supervised by a thread of the fork server (named in ps, not "python"); PID 1 is named
        # after its command.
        assert recorded.shim_pid == pooled.engine.runtime._forkserver._process.pid
        with open(f"/proc/{recorded.shim_pid}/comm") as shim, open(f"/proc/{recorded.pid}/comm") as pid1:
            assert (shim.read().strip(), pid1.read().strip()) == ("nbdock-forksrv", "sleep")
    finally:
        container.remove(force=True)
    assert recorded.cgroup not in leftover_container_ids()


def test_two_pre_warmed_containers_share_no_namespace(pooled) -> None:
    names = ("net", "pid", "mnt", "uts", "ipc", "cgroup")
    before = _launches(pooled)
    first = pooled.containers.run("busybox", ["sleep", "30"], detach=True)
    pooled.engine.runtime.prewarm()
    second = pooled.containers.run("busybox", ["sleep", "30"], detach=True)
    try:
        assert _launches(pooled) == before + 2  # both alive at once: no inode can be reused
        pids = [pooled.engine.runtime.state(c.id).pid for c in (first, second)]
        seen = [{n: os.readlink(f"/proc/{pid}/ns/{n}") for n in names} for pid in [*pids, os.getpid()]]
        for name in names:
            assert len({ns[name] for ns in seen}) == 3, name  # first, second and the host differ
    finally:
        first.remove(force=True)
        second.remove(force=True)


def test_memory_limit_reaches_a_pre_warmed_cgroup_and_oom_kills(pooled) -> None:
    before = _launches(pooled)
    container = pooled.containers.run(
        "busybox", ["sh", "-c", "cat /dev/zero | head -c 200m | tail"], detach=True, mem_limit="32m",
    )
    result = container.wait(timeout=60)
    assert _launches(pooled) == before + 1
    assert result["StatusCode"] == 137
    assert container.attrs["State"]["OOMKilled"] is True
    container.remove()


def test_pids_limit_reaches_a_pre_warmed_cgroup(pooled) -> None:
    from nbdock.runtime.linux.cgroups import open_cgroup
    from nbdock.runtime.spec import Limits

    before = _launches(pooled)
    container = pooled.containers.run(
        "busybox", ["sh", "-c", "for i in $(seq 30); do sleep 30 & done; wait"], detach=True,
        pids_limit=10,
    )
    try:
        assert _launches(pooled) == before + 1
        cgroup = open_cgroup(pooled.engine.runtime.state(container.id).cgroup, Limits())
        limits = [p / "pids.max" for p in cgroup.paths() if (p / "pids.max").exists()]
        assert [path.read_text().strip() for path in limits] == ["10"]
        _wait_for(lambda: b"can't fork" in container.logs(), "a refused fork")
    finally:
        container.remove(force=True)


def test_cpus_limit_starts_directly(pooled) -> None:
    before = _launches(pooled)
    container = pooled.containers.run("busybox", ["sleep", "30"], detach=True, cpus=0.5)
    try:
        assert _launches(pooled) == before  # the pool's cgroups have no cpu hierarchy
        assert pooled.engine.runtime.state(container.id).cgroup_name == container.id
    finally:
        container.remove(force=True)


def test_closing_the_client_retires_the_pool(engine_root, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbdock

    monkeypatch.setenv("NBDOCK_FORKSERVER", "always")
    client = nbdock.from_env(engine_root)
    before = _pool_cgroups()
    client.engine.runtime.prewarm()
    server_pid = client.engine.runtime._forkserver._process.pid
    _wait_for(lambda: len(_pool_cgroups() - before) == 1, "the pre-warmed container's cgroup")
    (made,) = _pool_cgroups() - before
    client.close()
    assert not os.path.exists(f"/proc/{server_pid}")
    _wait_for(lambda: made not in leftover_container_ids(), "the retired container's cgroup removed")


def test_a_killed_pre_warmed_supervisor_leaves_nothing(pooled) -> None:
    import nbdock

    container = pooled.containers.run("busybox", ["sleep", "60"], detach=True)
    recorded = pooled.engine.runtime.state(container.id)
    assert recorded.cgroup.startswith(CGROUP_PREFIX)
    os.kill(recorded.shim_pid, signal.SIGKILL)
    _wait_for(lambda: not os.path.exists(f"/proc/{recorded.pid}"), "the container's death")
    fresh = nbdock.from_env(pooled.engine.root)  # its start-up cleanup knows the pool cgroup
    assert fresh.containers.get(container.id).attrs["State"]["ExitCode"] == 137
    assert recorded.cgroup not in leftover_container_ids()
    fresh.containers.get(container.id).remove()
    fresh.close()


def test_a_broken_pre_warmed_container_falls_back_to_a_direct_start(pooled) -> None:
    """Someone removes the waiting entry's cgroup (killing its init): the next start still works."""
    from nbdock.runtime.linux.cgroups import open_cgroup
    from nbdock.runtime.spec import Limits

    # This client's fork server's entry (its pid is in the name; others may come and go).
    prefix = f"{CGROUP_PREFIX}{pooled.engine.runtime._forkserver._process.pid}-"
    ours = lambda: [n for n in _pool_cgroups() if n.startswith(prefix)]  # noqa: E731
    _wait_for(lambda: bool(ours()), "a pre-warmed cgroup")
    # Ready, not half made: its init in the cgroup (else the removal races the cgroup's making).
    _wait_for(lambda: all(open_cgroup(n, Limits()).is_populated() for n in ours()), "its init joined")
    for name in ours():
        recorded_users = [c for c in pooled.engine.runtime.list() if c.cgroup == name]
        if not recorded_users:  # waiting entries only, never a running container's
            open_cgroup(name, Limits()).destroy()
    before = _launches(pooled)
    assert pooled.containers.run("busybox", ["echo", "still fine"], remove=True) == b"still fine\n"
    assert _launches(pooled) == before


def test_pool_off_means_no_pre_warmed_containers(client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDOCK_FORKSERVER", "always")
    monkeypatch.setenv("NBDOCK_POOL", "0")
    before = _launches(client) if client.engine.runtime._forkserver else 0
    client.engine.runtime.prewarm()
    assert client.containers.run("busybox", ["true"], remove=True) == b""
    assert _launches(client) == before


def test_exec_and_stats_find_a_pre_warmed_containers_cgroup(pooled) -> None:
    container = pooled.containers.run("busybox", ["sleep", "30"], detach=True, mem_limit="64m")
    try:
        recorded = pooled.engine.runtime.state(container.id)
        assert recorded.cgroup.startswith(CGROUP_PREFIX)
        code, output = container.exec_run(["sh", "-c", "echo $$; cat /proc/self/cgroup"])
        assert code == 0
        assert output.split()[0] != b"1"  # a new process of the container, not its PID 1
        stats = pooled.engine.runtime.stats(container.id)
        assert stats is not None and stats.memory_limit_bytes == 64 * 1024 * 1024
        assert stats.pids_current >= 1
        # inside, the cgroup namespace hides the pool name: PID 1 sees its cgroup as the root
        assert b"pids:/\n" in output
        with open(f"/proc/{recorded.pid}/cgroup") as handle:
            assert recorded.cgroup in handle.read()
    finally:
        container.remove(force=True)


def _prewarming_caller(engine_root) -> tuple[Any, int, str]:  # noqa: ANN001
    """A separate process that opens the engine and pre-warms a container, then sleeps: its
    Popen, its fork server's pid, and the pre-warmed container's cgroup name."""
    import subprocess
    import sys

    script = (
        "import sys, time, nbdock\n"
        "c = nbdock.from_env(sys.argv[1])\n"
        "c.engine.prewarm()\n"
        "print(c.engine.runtime._forkserver._process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "NBDOCK_FORKSERVER": "always"}
    env.pop("NBDOCK_POOL", None)
    caller = subprocess.Popen(
        [sys.executable, "-c", script, str(engine_root)], stdout=subprocess.PIPE, text=True, env=env,
    )
    # Its fork server's pid is in the cgroup's name: other fork servers (this session's client)
    # may pre-warm their own meanwhile.
    try:
        server_pid = int(caller.stdout.readline())
        prefix = f"{CGROUP_PREFIX}{server_pid}-"
        _wait_for(lambda: any(n.startswith(prefix) for n in _pool_cgroups()),
                  "the pre-warmed container's cgroup")
    except BaseException:
        caller.kill()
        caller.wait()
        raise
    (made,) = (name for name in _pool_cgroups() if name.startswith(prefix))
    return caller, server_pid, made


def test_a_killed_caller_leaves_no_pre_warmed_container(engine_root) -> None:  # noqa: ANN001
    """SIGKILL the process that owns the fork server: the server sees its socket close, the
    waiting entry sees its request pipe close, and both clean up (processes and cgroup)."""
    caller, server_pid, made = _prewarming_caller(engine_root)
    try:
        assert state.process_start_time(server_pid) is not None  # running
    finally:
        caller.kill()
        caller.wait()
    # gone, or a zombie waiting for whoever inherited it to reap it
    _wait_for(lambda: state.process_start_time(server_pid) is None, "the fork server exits")
    _wait_for(lambda: made not in leftover_container_ids(), "the pre-warmed cgroup removed")


def test_a_pool_cgroup_whose_fork_server_was_sigkilled_is_cleaned_at_next_start(engine_root) -> None:  # noqa: ANN001
    """Everything SIGKILLed at once (an OOM kill, `kill -9` of every nbdock process): the waiting
    entry cannot clean up, so the next engine start removes its empty cgroup at once — the
    fork server named in the cgroup's name is gone."""
    import nbdock
    from nbdock.runtime.linux.cgroups import open_cgroup
    from nbdock.runtime.spec import Limits

    caller, server_pid, made = _prewarming_caller(engine_root)
    try:
        assert made.startswith(f"{CGROUP_PREFIX}{server_pid}-")
        cgroup = open_cgroup(made, Limits())
        _wait_for(cgroup.is_populated, "the pre-warmed init in its cgroup")
        init_pid = next(int(p) for d in cgroup.paths() for p in (d / "cgroup.procs").read_text().split())
        with open(f"/proc/{init_pid}/stat") as handle:
            entry_pid = int(handle.read().rsplit(")", 1)[1].split()[1])  # the waiting supervisor
        for pid in (entry_pid, server_pid):  # no one gets to clean up
            os.kill(pid, signal.SIGKILL)
    finally:
        caller.kill()
        caller.wait()
    _wait_for(lambda: not cgroup.is_populated(), "the pre-warmed init dies with its supervisor")
    assert made in leftover_container_ids()
    nbdock.from_env(engine_root).close()  # an engine start: Runtime.cleanup
    assert made not in leftover_container_ids()
