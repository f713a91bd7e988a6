"""The design's layering rule, enforced: which nbdock package may import which (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "nbdock"
BASE = {"errors", "_types", "_paths"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "_types": set(),
    "_paths": set(),
    "dockerfile": BASE,
    "image": BASE,
    "runtime": BASE,
    "build": BASE | {"dockerfile", "image", "runtime"},
    "engine": BASE | {"build", "image", "runtime", "inspection"},
    "inspection": BASE | {"runtime"},
    "client": BASE | {"engine"},
    "cli": BASE | {"client"},
    "notebook": BASE | {"client"},
    "daemon": BASE | {"client", "engine"},
    "__init__": BASE | {"client", "notebook"},  # from_env and the IPython extension entry points
}


def _part(module_path: Path) -> str:
    relative = module_path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _imported_parts(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "nbdock":  # `from nbdock import errors` names the part directly
                names = [f"nbdock.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "nbdock" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_respects_the_layering() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = _part(path)
        assert part in ALLOWED, f"{path}: new top-level part {part!r}; add it to DESIGN and here"
        imported = _imported_parts(ast.parse(path.read_text()))
        for other in imported - {part} - ALLOWED[part]:
            violations.append(f"{path.relative_to(PACKAGE.parent)} imports nbdock.{other}")
    assert violations == []
