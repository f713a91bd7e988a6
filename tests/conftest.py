"""Shared test fixtures.

The rule that matters most here: a test that needs root, a kernel feature, a browser or a registry
*fails* under ``CI=true`` when the feature is missing, and only skips on a developer's machine.
Use ``need(condition, what)`` for that, never ``pytest.skip`` directly.
"""

from __future__ import annotations

import os
from pathlib import Path

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
