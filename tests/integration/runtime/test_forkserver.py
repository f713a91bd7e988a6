"""Containers launched through the fork server behave exactly like directly forked ones."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nbdock.errors import ContainerError, RuntimeFailure


@pytest.fixture
def via_server(client, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("NBDOCK_FORKSERVER", "always")
    return client


def test_attached_and_detached_runs_through_the_server(via_server) -> None:
    out = via_server.containers.run("busybox", ["sh", "-c", "echo pid $$"], remove=True)
    assert out == b"pid 1\n"
    server = via_server.engine.runtime._forkserver
    assert server is not None and server._process is not None
    assert server._process.poll() is None  # one long-lived server, reused
    ticker = via_server.containers.run("busybox", ["sleep", "30"], detach=True)
    assert ticker.status == "running"
    assert via_server.engine.runtime._forkserver is server
    ticker.kill()
    assert ticker.wait()["StatusCode"] == 137
    ticker.remove()


def test_a_threaded_caller_uses_the_server_by_default(client, monkeypatch) -> None:
    monkeypatch.setenv("NBDOCK_FORKSERVER", "auto")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        client.engine.runtime._forkserver = None
        assert client.containers.run("busybox", ["true"], remove=True) == b""
        assert client.engine.runtime._forkserver is not None
    finally:
        stop.set()
        worker.join()


def test_server_errors_reach_the_caller_as_nbdock_errors(via_server) -> None:
    container = via_server.containers.create("busybox", ["true"])
    paths = via_server.engine.runtime.paths(container.id)
    paths.spec.unlink()  # the server cannot read what to launch
    with pytest.raises(RuntimeFailure, match="spec.json"):
        via_server.engine.start_container(container.id)
    container.remove()


def _settled_fds(pid: int) -> int:
    """The server's open fds once its supervision threads are done: with --rm, the caller has
    its answer before the thread removes the files and closes the container's log."""
    deadline = time.monotonic() + 10
    while True:
        links = []
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
            except FileNotFoundError:  # closed while we looked
                continue
        if not any("/.removing-" in link for link in links) or time.monotonic() > deadline:
            return len(links)
        time.sleep(0.05)


def test_the_server_supervises_from_threads_and_leaks_no_fd(via_server, monkeypatch) -> None:
    """Supervision threads (supervisor.launch_in_thread) open a log, pipes to the init, the
    event channel: every one of them is closed again, after success and after failure."""
    monkeypatch.setenv("NBDOCK_POOL", "0")  # pre-warmed containers have supervisor processes
    via_server.containers.run("busybox", ["true"], remove=True)
    server = via_server.engine.runtime._forkserver
    pid = server._process.pid
    before = _settled_fds(pid)
    container = via_server.containers.run("busybox", ["sleep", "30"], detach=True)
    assert container.attrs["State"]["Pid"] != pid
    with open(f"/proc/{container.attrs['State']['Pid']}/stat") as handle:
        init_parent = int(handle.read().rsplit(")", 1)[1].split()[1])
    assert init_parent == pid  # the server itself supervises it: no supervisor process
    container.kill()
    container.wait()
    container.remove()
    for _ in range(5):
        via_server.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True)
        with pytest.raises(ContainerError):
            via_server.containers.run("busybox", ["no-such-command"], remove=True)
    assert _settled_fds(pid) == before


def test_detached_containers_keep_the_server_and_close_does_not_kill_it(engine_root: Path) -> None:
    """A caller that started a detached container through the server exits: the container runs
    on, its exit is recorded, and the server exits after it (not before, and not killed)."""
    script = (
        "import os, sys, nbdock\n"
        "c = nbdock.from_env(sys.argv[1])\n"
        "box = c.containers.run('busybox', ['sh', '-c', 'echo up; sleep 30'], detach=True)\n"
        "print(box.id, c.engine.runtime._forkserver._process.pid, flush=True)\n"
        "c.close()\n"
    )
    env = {**os.environ, "NBDOCK_FORKSERVER": "always", "NBDOCK_POOL": "0"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(engine_root)], capture_output=True, text=True,
        check=True, env=env, timeout=60,
    )
    container_id, server_pid = result.stdout.split()
    import nbdock

    client = nbdock.from_env(engine_root)
    try:
        container = client.containers.get(container_id)
        assert container.status == "running"
        assert os.path.exists(f"/proc/{server_pid}")
        deadline = time.monotonic() + 10
        while b"up" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert container.logs() == b"up\n"
        container.kill()
        assert container.wait()["StatusCode"] == 137
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{server_pid}/status") and time.monotonic() < deadline:
            with open(f"/proc/{server_pid}/status") as handle:
                if "State:\tZ" in handle.read():
                    break
            time.sleep(0.05)
        gone = not os.path.exists(f"/proc/{server_pid}/status")
        if not gone:
            with open(f"/proc/{server_pid}/status") as handle:
                gone = "State:\tZ" in handle.read()
        assert gone, "the fork server did not exit after its last container"
        container.remove()
    finally:
        client.close()


def test_the_server_can_hold_the_fds_of_many_containers(via_server) -> None:
    """Supervision threads share the server's fd table: its soft limit is raised to the hard
    one (checked under a lowered soft limit in the caller, which the server inherits)."""
    import resource

    via_server.engine.runtime.close()  # a new server, started under the lowered limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    try:
        via_server.containers.run("busybox", ["true"], remove=True)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    pid = via_server.engine.runtime._forkserver._process.pid
    with open(f"/proc/{pid}/limits") as handle:
        line = next(row for row in handle if row.startswith("Max open files"))
    server_soft, server_hard = line.split()[3:5]
    assert server_soft == server_hard == str(hard)


def test_the_servers_stderr_is_a_log_beside_the_containers(via_server) -> None:
    """Not the caller's terminal or pipe (the server may outlive it), and not lost either: a
    supervision thread's traceback lands in <containers>/.forkserver.log."""
    via_server.containers.run("busybox", ["true"], remove=True)
    pid = via_server.engine.runtime._forkserver._process.pid
    log = Path(os.readlink(f"/proc/{pid}/fd/2"))
    assert log == via_server.engine.runtime.root / ".forkserver.log"
    assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
    assert ".forkserver.log" not in via_server.engine.runtime.ids()
