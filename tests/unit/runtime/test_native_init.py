"""nbdock-init, the compiled container init: built, static, and refusing to run by hand."""

from __future__ import annotations

import subprocess

import pytest

from nbdock.errors import RuntimeFailure
from nbdock.runtime import native
from nbdock.runtime.native import build

PT_INTERP = 3


def _program_header_types(path: str) -> list[int]:
    """ELF64 little-endian program header types: enough to tell a static program (no PT_INTERP)."""
    with open(path, "rb") as handle:
        data = handle.read(1 << 16)
    assert data[:4] == b"\x7fELF" and data[4] == 2, "not a 64-bit ELF file"
    phoff = int.from_bytes(data[32:40], "little")
    entry_size = int.from_bytes(data[54:56], "little")
    count = int.from_bytes(data[56:58], "little")
    return [
        int.from_bytes(data[phoff + i * entry_size:phoff + i * entry_size + 4], "little")
        for i in range(count)
    ]


def test_the_program_is_built_and_current() -> None:
    path = native.init_binary()
    assert not build.is_stale(path), "a C source is newer than nbdock-init: ./dev setup rebuilds it"


def test_the_program_is_static() -> None:
    # exec runs it inside a container's mount namespace, where the host's ld.so is not there.
    assert PT_INTERP not in _program_header_types(native.init_binary())


def test_run_by_hand_it_says_who_runs_it_and_fails_like_a_setup_error() -> None:
    result = subprocess.run([native.init_binary()], capture_output=True, text=True)
    assert result.returncode == 125
    assert "supervisor" in result.stderr


def test_a_missing_program_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setattr(native, "INIT_BINARY", str(tmp_path / "nbdock-init"))
    with pytest.raises(RuntimeFailure, match="gcc"):
        native.init_binary()


def test_a_rebuild_replaces_the_program_atomically(tmp_path) -> None:  # noqa: ANN001
    target = tmp_path / "nbdock-init"
    assert build.build(str(target)) == str(target)
    assert PT_INTERP not in _program_header_types(str(target))
    assert [p.name for p in tmp_path.iterdir()] == ["nbdock-init"]  # no partial file left
