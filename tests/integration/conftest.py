"""Fixtures for tests that run real containers: a private engine root with a busybox image."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import busybox_client, private_engine_root


@pytest.fixture(scope="session")
def engine_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with private_engine_root(tmp_path_factory.mktemp("engine")) as root:
        yield root


@pytest.fixture(scope="session")
def client(engine_root: Path):  # noqa: ANN201 - nbdock.client.Client
    with busybox_client(engine_root) as client:
        yield client


def run_output(client, *command: str, **options) -> str:  # noqa: ANN001, ANN201
    """Run busybox with ``command``; return stdout as text (raises ContainerError on failure)."""
    return client.containers.run("busybox", list(command), remove=True, **options).decode()


@contextmanager
def built_image(client, context: Path, tag: str) -> Iterator[str]:  # noqa: ANN001
    """An image built from ``context`` (a directory with a Dockerfile) for a test module; its
    containers and the image itself are removed afterwards, whatever the tests did."""
    client.images.build(path=str(context), tag=tag)
    try:
        yield tag
    finally:
        for container in client.containers.list(all=True):
            if container.image == tag:
                container.remove(force=True)
        client.images.remove(tag, force=True)
