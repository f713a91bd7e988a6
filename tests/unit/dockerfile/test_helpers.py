"""Typed flag values (Go durations, sizes), suggestions, and the package's import boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nbdock.dockerfile
from nbdock.dockerfile import DockerfileError
from nbdock.dockerfile._suggest import closest, edit_distance
from nbdock.dockerfile.flags import go_duration_ns, parse_flags, ram_in_bytes

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("30s", 30 * S), ("1m30s", 90 * S), ("1.5h", 5400 * S), ("300ms", 300_000_000),
     ("2us", 2000), ("2µs", 2000), ("7ns", 7), ("-1s", -S), ("+2s", 2 * S), ("1h2m3s4ms", 3723004000000)],
)  # fmt: skip
def test_go_duration(text: str, ns: int) -> None:
    assert go_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "5", "s", "1x", "1.s2", "--1s", "1 s", "."])
def test_go_duration_rejects(text: str) -> None:
    with pytest.raises(DockerfileError, match="invalid duration"):
        go_duration_ns(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024", 1024), ("64m", 64 << 20), ("1g", 1 << 30), ("1.5k", 1536), ("2MiB", 2 << 20),
     ("3 kb", 3072)],
)  # fmt: skip
def test_ram_in_bytes(text: str, size: int) -> None:
    assert ram_in_bytes(text) == size


def test_ram_in_bytes_rejects() -> None:
    with pytest.raises(DockerfileError, match="invalid size"):
        ram_in_bytes("lots")


def test_parse_flags_values() -> None:
    flags = parse_flags(
        "COPY", ["--from=a", "--link", "--parents=FALSE", "--exclude=x", "--exclude=y", "--"]
    )
    assert flags == {"from": "a", "link": True, "parents": False, "exclude": ["x", "y"]}


def test_suggestions() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert closest("RUNN", ["FROM", "RUN"]) == "RUN"
    assert closest("run", ["RUN"]) is None  # exact (case-insensitively): nothing to suggest
    assert closest("xyzzy", ["RUN", "COPY"]) is None


def test_dockerfile_package_imports_only_errors_and_types() -> None:
    """nbdock.dockerfile is pure: of nbdock it may import only errors, _types and itself."""
    allowed_stdlib_io = {"os", "pathlib", "subprocess", "socket", "shutil", "io", "tempfile"}
    for path in Path(nbdock.dockerfile.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root not in allowed_stdlib_io, f"{path.name} imports {name} (I/O)"
                if root == "nbdock":
                    assert name in ("nbdock.errors", "nbdock._types") or name.startswith(
                        "nbdock.dockerfile"
                    ), f"{path.name} imports {name}"


def test_public_api_is_exported() -> None:
    for name in nbdock.dockerfile.__all__:
        assert hasattr(nbdock.dockerfile, name), name
