"""Fixtures for tests that run real containers: a private engine root with a busybox image."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need


@pytest.fixture(scope="session")
def engine_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need(os.geteuid() == 0, "root (containers need namespaces, mounts and cgroups)")
    need(shutil.which("busybox") is not None or os.path.exists("/bin/busybox"),
         "busybox-static (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("engine")
    previous = os.environ.get("NBDOCK_ROOT")
    os.environ["NBDOCK_ROOT"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("NBDOCK_ROOT", None)
    else:
        os.environ["NBDOCK_ROOT"] = previous


@pytest.fixture(scope="session")
def client(engine_root: Path):  # noqa: ANN201 - nbdock.client.Client
    import nbdock

    client = nbdock.from_env(engine_root)
    client.images.bootstrap("busybox")
    yield client
    for container in client.containers.list(all=True):
        container.remove(force=True)


def run_output(client, *command: str, **options) -> str:  # noqa: ANN001, ANN201
    """Run busybox with ``command``; return stdout as text (raises ContainerError on failure)."""
    return client.containers.run("busybox", list(command), remove=True, **options).decode()
