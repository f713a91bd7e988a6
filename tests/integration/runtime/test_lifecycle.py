"""Lifecycle: detached containers outlive their caller; limits; crash recovery leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbdock.errors import ContainerError, ContainerNotFound
from nbdock.runtime.linux.cgroups import leftover_container_ids


def _wait_for(predicate, what: str, attempts: int = 200) -> None:  # noqa: ANN001
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _cgroup_of(client, container) -> str:  # noqa: ANN001
    """The container's cgroup name: its id, or ``pool-*`` when it was pre-warmed (runtime/pool.py)."""
    return client.engine.runtime.state(container.id).cgroup_name


def _mounts_naming(container_id: str) -> list[str]:
    with open("/proc/mounts") as handle:
        return [line for line in handle if container_id in line]


def test_detached_container_outlives_the_process_that_started_it(client, engine_root: Path) -> None:
    script = (
        "import nbdock; c = nbdock.from_env().containers.run('busybox', "
        "['sh', '-c', 'echo started; sleep 30'], detach=True, name='outliver'); print(c.id)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={**os.environ, "NBDOCK_ROOT": str(engine_root)},
    )
    container_id = result.stdout.strip()
    container = client.containers.get("outliver")
    assert container.id == container_id
    assert container.status == "running"
    _wait_for(lambda: b"started" in container.logs(), "log line from the detached container")
    container.stop(timeout=1)
    assert container.status == "exited"
    assert container.attrs["State"]["ExitCode"] == 137  # sleep as PID 1 ignores SIGTERM
    container.remove()


def test_kill_with_signal_gives_128_plus_n(client) -> None:
    container = client.containers.run("busybox", ["sleep", "60"], detach=True)
    container.kill("SIGKILL")
    assert container.wait()["StatusCode"] == 128 + signal.SIGKILL
    container.remove()


def test_exec_runs_inside_the_running_container(client) -> None:
    container = client.containers.run("busybox", ["sleep", "60"], detach=True, hostname="exechost")
    code, output = container.exec_run(["sh", "-c", "hostname; echo $$; cat /proc/1/cmdline"])
    lines = output.decode().splitlines()
    assert code == 0
    assert lines[0] == "exechost"
    assert int(lines[1]) > 1
    assert lines[2].startswith("sleep")
    assert container.exec_run(["nosuch"]).exit_code == 127
    container.remove(force=True)


def test_memory_hog_is_oom_killed_and_the_engine_survives(client) -> None:
    container = client.containers.run(
        "busybox", ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"],
        detach=True, mem_limit="32m",
    )
    result = container.wait()
    assert result["StatusCode"] == 137
    assert container.attrs["State"]["OOMKilled"] is True
    assert b"survived" not in container.logs()
    container.remove()
    # the engine (this process) still works and can allocate
    assert bytearray(64 * 1024 * 1024)
    assert client.containers.run("busybox", ["echo", "alive"], remove=True) == b"alive\n"


def test_fork_bomb_is_contained_by_pids_limit(client) -> None:
    out = client.containers.run(
        "busybox",
        # The bomb runs in a child shell (ash exits when a fork fails); the count uses only
        # builtins, since at the limit not even the container's PID 1 can fork any more.
        ["sh", "-c", "sh -c 'for i in $(seq 150); do sleep 30 & done' 2>/dev/null; "
         "set -- /proc/[0-9]*; echo $#"],
        remove=True, pids_limit=64,
    )
    assert 50 <= int(out.decode().strip()) <= 64
    pid = os.fork()  # the host can still fork
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0


def test_killed_supervisor_leaves_nothing_after_cleanup(client) -> None:
    container = client.containers.run("busybox", ["sleep", "60"], detach=True)
    state_file = Path(client.engine.runtime.paths(container.id).directory) / "state.json"
    import json

    recorded = json.loads(state_file.read_text())
    container_pid = recorded["pid"]
    cgroup = recorded["cgroup"] or container.id
    os.kill(recorded["shim_pid"], signal.SIGKILL)
    _wait_for(lambda: not os.path.exists(f"/proc/{container_pid}"), "container death")
    # A new engine (as after a restart) sees the truth and clears the leftovers.
    import nbdock

    fresh = nbdock.from_env(client.engine.root)
    survivor = fresh.containers.get(container.id)
    assert survivor.status == "exited"
    assert survivor.attrs["State"]["ExitCode"] == 137
    assert cgroup not in leftover_container_ids()
    survivor.remove(force=True)
    assert _mounts_naming(container.id) == []
    assert cgroup not in leftover_container_ids()


def test_rm_force_removes_a_running_container_and_its_cgroup(client) -> None:
    container = client.containers.run("busybox", ["sleep", "60"], detach=True)
    cgroup = _cgroup_of(client, container)
    assert cgroup in leftover_container_ids()  # its cgroup exists while it runs
    container.remove(force=True)
    assert cgroup not in leftover_container_ids()
    assert _mounts_naming(container.id) == []
    assert not client.engine.runtime.paths(container.id).directory.exists()


def test_non_zero_exit_raises_container_error_with_stderr(client) -> None:
    try:
        client.containers.run("busybox", ["sh", "-c", "echo boom >&2; exit 4"], remove=True)
    except ContainerError as error:
        assert error.exit_status == 4
        assert b"boom" in error.stderr
    else:
        raise AssertionError("ContainerError not raised")


def test_streaming_output_arrives_while_the_container_runs(client) -> None:
    attached = client.containers.run_attached(
        "busybox", ["sh", "-c", "echo one; sleep 1; echo two"]
    )
    seen: list[tuple[bytes, bool]] = []
    for _stream, data in attached.output():
        running = client.engine.runtime.state(attached.container_id).status == "running"
        seen.append((data, running))
    assert seen[0] == (b"one\n", True)  # the first line came before the container finished
    assert attached.exit_code == 0
    client.engine.runtime.remove(attached.container_id)


def test_an_engine_on_another_root_leaves_our_containers_alone(client, tmp_path: Path) -> None:
    import nbdock

    container = client.containers.run("busybox", ["sleep", "60"], detach=True)
    nbdock.from_env(tmp_path / "other-root")  # its start-up cleanup must not touch ours
    container.reload()
    assert container.status == "running"
    assert _cgroup_of(client, container) in leftover_container_ids()
    container.remove(force=True)


def test_cpu_and_memory_limits_reach_the_cgroup(client) -> None:
    from nbdock.runtime.linux.cgroups import open_cgroup
    from nbdock.runtime.spec import Limits

    container = client.containers.run(
        "busybox", ["sleep", "30"], detach=True, cpus=0.5, mem_limit="48m", pids_limit=20
    )
    try:
        files = {}
        for directory in open_cgroup(_cgroup_of(client, container), Limits()).paths():
            for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.max", "memory.limit_in_bytes",
                         "memory.max", "pids.max"):
                if (directory / name).exists():
                    files[name] = (directory / name).read_text().strip()
        quota = files.get("cpu.max") or f"{files['cpu.cfs_quota_us']} {files['cpu.cfs_period_us']}"
        assert quota == "50000 100000"
        assert int(files.get("memory.max") or files["memory.limit_in_bytes"]) == 48 << 20
        assert files["pids.max"] == "20"
        stats = container.stats()
        assert stats["memory_limit_bytes"] == 48 << 20
        assert stats["pids"] >= 1
    finally:
        container.remove(force=True)


def test_run_with_remove_returns_with_the_container_gone(client) -> None:
    """The supervisor removes it (rename, then close the stream): no caller-side removal needed,
    and nothing half-deleted is ever listed or resolvable."""
    runtime = client.engine.runtime
    before = set(runtime.ids())
    for _ in range(3):
        assert client.containers.run("busybox", ["echo", "bye"], remove=True) == b"bye\n"
    assert set(runtime.ids()) == before
    assert not [name for name in runtime.ids() if name.startswith(".")]
    assert [c.id for c in client.containers.list(all=True) if c.id not in before] == []
    removing = [entry.name for entry in runtime.root.glob(".removing-*")]
    for name in removing:  # a supervisor may still be deleting files: invisible by any name
        with pytest.raises(ContainerNotFound):
            runtime.resolve(name)


def test_cgroup_namespace_root_is_the_containers_cgroup(client) -> None:
    """The init joins its cgroup after mounting (the two overlap) but before it unshares the
    cgroup namespace: every hierarchy must show "/" inside, as Docker's containers do."""
    output = client.containers.run("busybox", ["cat", "/proc/self/cgroup"], remove=True).decode()
    paths = [line.split(":", 2)[2] for line in output.splitlines() if line]
    assert paths and all(path == "/" for path in paths), output


def test_a_failed_start_with_remove_leaves_nothing(client) -> None:
    runtime = client.engine.runtime
    before = set(runtime.ids())
    with pytest.raises(ContainerError) as raised:
        client.containers.run("busybox", ["no-such-command"], remove=True)
    assert raised.value.exit_status == 127
    assert set(runtime.ids()) == before


def test_an_auto_removed_containers_name_is_free_at_once(client) -> None:
    for _ in range(2):  # like `docker run --rm --name job ...` twice in a row
        assert client.containers.run("busybox", ["true"], name="rm-name-reuse", remove=True) == b""
    # The supervisor drops the index entry after the caller has its answer.
    entry = client.engine.runtime.names.directory / "rm-name-reuse"
    _wait_for(lambda: not entry.exists(), "the name index entry released")


def test_rm_force_of_a_container_that_just_exited_waits_for_its_record(client, monkeypatch) -> None:
    """The command has exited but its supervisor has not recorded it yet (held here with
    SIGSTOP): `rm -f` must not fail with "not running" — it waits for the record, then removes."""
    import threading

    monkeypatch.setenv("NBDOCK_FORKSERVER", "never")  # a supervisor process we can stop
    container = client.containers.run("busybox", ["sleep", "60"], detach=True)
    recorded = client.engine.runtime.state(container.id)
    os.kill(recorded.shim_pid, signal.SIGSTOP)
    resume = threading.Timer(0.5, os.kill, (recorded.shim_pid, signal.SIGCONT))
    try:
        os.kill(recorded.pid, signal.SIGKILL)
        _wait_for(lambda: _dead(recorded.pid), "the command's death")
        resume.start()
        container.remove(force=True)
    finally:
        resume.cancel()
        if not _dead(recorded.shim_pid):
            os.kill(recorded.shim_pid, signal.SIGCONT)
    with pytest.raises(ContainerNotFound):
        client.containers.get(container.id)


def _dead(pid: int) -> bool:
    """Gone, or a zombie its (stopped) parent has not reaped."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return "State:\tZ" in handle.read()
    except FileNotFoundError:
        return True


def test_exec_spawns_the_init_program_instead_of_forking_the_caller(client) -> None:
    """exec's process tree from the host: caller → nbdock-init (in the host's PID namespace,
    joined to the container's other namespaces) → the command. No copy of the caller in
    between: a notebook kernel is not forked for an exec."""
    import threading

    container = client.containers.run("busybox", ["sleep", "60"], detach=True)
    try:
        done = threading.Event()
        worker = threading.Thread(
            target=lambda: (container.exec_run(["sleep", "3"]), done.set()), daemon=True
        )
        worker.start()
        pid1 = client.engine.runtime.state(container.id).pid

        def exec_chain() -> tuple[str, int] | None:
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == pid1:
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as handle:
                        if handle.read() != b"sleep\x003\x00":
                            continue
                    parent = _stat_ppid(int(entry))
                    with open(f"/proc/{parent}/comm") as handle:
                        return handle.read().strip(), _stat_ppid(parent)
                except OSError:
                    continue
            return None

        _wait_for(lambda: exec_chain() is not None, "the exec'd command")
        assert exec_chain() == ("nbdock-init", os.getpid())
        assert done.wait(10)
    finally:
        container.remove(force=True)


def _stat_ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])
