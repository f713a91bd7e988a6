"""Helpers for real builds: a context directory per test, built into the session's engine
(a private NBDOCK_ROOT with busybox bootstrapped, from tests/integration/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


def write_context(root: Path, dockerfile: str, files: dict[str, str | bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def build(client: Any, context: Path, **options: Any) -> tuple[Any, list[Any]]:
    return client.images.build(path=str(context), **options)


def statuses(events: list[Any]) -> dict[str, str]:
    """Step text → cached/done/failed, and the miss reason when rebuilt."""
    texts: dict[int, str] = {}
    out: dict[str, str] = {}
    for event in events:
        data = event.to_json()
        if data["type"] == "step-started":
            texts[data["id"]] = data["text"]
        elif data["type"] == "step-cache-miss":
            out[texts[data["id"]]] = f"miss:{data['kind']}:{data['reason']}"
        elif data["type"] == "step-finished" and texts[data["id"]] not in out:
            out[texts[data["id"]]] = data["status"]
    return out


def run(client: Any, image: str, *command: str, **options: Any) -> str:
    out = client.containers.run(image, list(command) or None, remove=True, **options)
    return out.decode()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    path = tmp_path / "context"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _reproducible_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    os.umask(0o022)
