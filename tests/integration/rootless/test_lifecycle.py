"""Rootless lifecycle: detached containers, logs, stop, exec, rm, a killed supervisor, limits."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from nbdock.errors import UnsupportedFeature
from tests.integration.rootless._support import only_without_root

pytestmark = pytest.mark.rootless
only_without_root()


def _wait_for(predicate, what: str, attempts: int = 200) -> None:  # noqa: ANN001
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _status_ids(pid: int) -> dict[str, list[str]]:
    with open(f"/proc/{pid}/status") as handle:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    return {key: fields[key].split() for key in ("Uid", "Gid")}


def test_detached_container_runs_as_the_caller_on_the_host(rootless_client) -> None:
    container = rootless_client.containers.run(
        "busybox", ["sh", "-c", "echo started; sleep 30"], detach=True, name="rootless-detached"
    )
    try:
        pid = container.attrs["State"]["Pid"]
        assert pid > 0
        ids = _status_ids(pid)
        # Root in the container, the caller on the host: real, effective, saved and fs ids.
        assert ids["Uid"] == [str(os.getuid())] * 4
        assert ids["Gid"] == [str(os.getgid())] * 4
        assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
        _wait_for(lambda: b"started" in container.logs(), "the container's first log line")
        assert rootless_client.containers.get("rootless-detached").status == "running"
        container.stop(timeout=1)
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 137  # sh as PID 1 ignores SIGTERM
        assert not os.path.exists(f"/proc/{pid}")
    finally:
        container.remove(force=True)
    assert not rootless_client.engine.runtime.paths(container.id).directory.exists()


def test_exec_joins_the_user_namespace_first(rootless_client) -> None:
    container = rootless_client.containers.run(
        "busybox", ["sleep", "60"], detach=True, hostname="rootless-exec"
    )
    try:
        code, output = container.exec_run(["sh", "-c", "hostname; id -u; echo $$; cat /proc/1/cmdline"])
        lines = output.decode().splitlines()
        assert code == 0
        assert lines[:2] == ["rootless-exec", "0"]
        assert int(lines[2]) > 1
        assert lines[3].startswith("sleep")
        assert container.exec_run(["nosuch"]).exit_code == 127
    finally:
        container.remove(force=True)


def test_kill_with_signal_gives_128_plus_n(rootless_client) -> None:
    container = rootless_client.containers.run("busybox", ["sleep", "60"], detach=True)
    container.kill("SIGKILL")
    assert container.wait()["StatusCode"] == 128 + signal.SIGKILL
    container.remove()


def test_killed_supervisor_takes_the_container_with_it(rootless_client) -> None:
    import nbdock

    container = rootless_client.containers.run("busybox", ["sleep", "60"], detach=True)
    directory = rootless_client.engine.runtime.paths(container.id).directory
    recorded = json.loads((Path(directory) / "state.json").read_text())
    os.kill(recorded["shim_pid"], signal.SIGKILL)
    _wait_for(lambda: not os.path.exists(f"/proc/{recorded['pid']}"), "the container's death")
    fresh = nbdock.from_env(rootless_client.engine.root)
    survivor = fresh.containers.get(container.id)
    assert survivor.status == "exited"
    assert survivor.attrs["State"]["ExitCode"] == 137
    survivor.remove(force=True)
    assert not Path(directory).exists()


@pytest.mark.parametrize(
    "limit", [{"mem_limit": "32m"}, {"cpus": 0.5}, {"pids_limit": 64}], ids=lambda d: next(iter(d))
)
def test_limits_are_refused_before_anything_starts(rootless_client, limit: dict) -> None:
    before = {c.id for c in rootless_client.containers.list(all=True)}
    with pytest.raises(UnsupportedFeature, match="resource limits need root"):
        rootless_client.containers.run("busybox", ["true"], remove=True, **limit)
    refused = [c for c in rootless_client.containers.list(all=True) if c.id not in before]
    for container in refused:
        # The record exists (create ran), but no supervisor or process was ever started.
        assert container.status == "created"
        assert container.attrs["State"]["Pid"] == 0
        container.remove()
