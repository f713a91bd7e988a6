"""Containers launched through the fork server behave exactly like directly forked ones."""

from __future__ import annotations

import threading

import pytest

from nbdock.errors import RuntimeFailure


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
