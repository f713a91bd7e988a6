"""``%load_ext nbdock`` opens the engine and pre-warms a container in the background, so the
notebook's first container start is as fast as the later ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.notebook.conftest import magics


@pytest.fixture
def shell(client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: ARG001 - busybox image
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("NBDOCK_FORKSERVER", "always")
    monkeypatch.delenv("NBDOCK_POOL", raising=False)
    monkeypatch.delenv("NBDOCK_PREWARM", raising=False)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbdock")
    yield ip
    ip.run_line_magic("unload_ext", "nbdock")


def test_the_first_container_of_a_notebook_gets_a_pre_warmed_start(shell) -> None:  # noqa: ANN001
    loaded = magics(shell)
    deadline = time.monotonic() + 30
    server = None
    while time.monotonic() < deadline:  # the warm-up thread: engine, fork server, prewarm
        runtime = loaded._client.engine.runtime if loaded._client is not None else None
        server = runtime._forkserver if runtime is not None else None
        if server is not None and server.ready():
            break
        time.sleep(0.05)
    assert server is not None and server.ready(), "no fork server started at %load_ext"
    time.sleep(0.3)  # prewarm() returns once the entry is forked; let it settle
    shell.run_line_magic("container_run", "--rm busybox true")
    assert server.pooled_launches == 1
