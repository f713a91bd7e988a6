"""Shared test fixtures.

The rule that matters most here: a test that needs root, a kernel feature, a browser or a registry
*fails* under ``CI=true`` when the feature is missing, and only skips on a developer's machine.
Use ``need(condition, what)`` for that, never ``pytest.skip`` directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(os.environ.get("NBDOCK_CONFORMANCE", REPO.parent / "shared" / "conformance"))


def need(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when ``condition`` (a needed feature) is false."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {what}")
    pytest.skip(f"missing: {what}")


def conformance_dir(name: str) -> Path:
    path = CONFORMANCE / name
    need(path.is_dir(), f"conformance data {path}")
    return path


@pytest.fixture
def as_root() -> None:
    need(os.geteuid() == 0, "root")


@pytest.fixture
def nbdock_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state root so tests never touch /var/lib/nbdock or each other."""
    root = tmp_path / "nbdock-root"
    root.mkdir()
    monkeypatch.setenv("NBDOCK_ROOT", str(root))
    return root


@contextmanager
def private_engine_root(root: Path) -> Iterator[Path]:
    """``NBDOCK_ROOT=root`` for the block (kernels and CLIs started inside inherit it), for
    tests that run real containers: needs root and busybox-static."""
    need(os.geteuid() == 0, "root (containers need namespaces, mounts and cgroups)")
    need(shutil.which("busybox") is not None or os.path.exists("/bin/busybox"),
         "busybox-static (apt-get install busybox-static)")
    previous = os.environ.get("NBDOCK_ROOT")
    os.environ["NBDOCK_ROOT"] = str(root)
    try:
        yield root
    finally:
        if previous is None:
            os.environ.pop("NBDOCK_ROOT", None)
        else:
            os.environ["NBDOCK_ROOT"] = previous


@contextmanager
def busybox_client(root: Path) -> Iterator[Any]:
    """A client on ``root`` with the busybox image; removes its containers afterwards."""
    import nbdock

    client = nbdock.from_env(root)
    client.images.bootstrap("busybox")
    try:
        yield client
    finally:
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()
