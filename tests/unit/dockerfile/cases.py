"""Readers for the table-driven test data under ``data/`` (Dockerfile blocks with expectations)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
TAB_MARK = "⇥"


@dataclasses.dataclass
class Case:
    title: str
    text: str
    expectations: list[tuple[str, str]]  # (kind, rest of the line)


def read_cases(name: str) -> list[Case]:
    """Blocks ``### title`` / Dockerfile lines / ``--- kind payload`` lines."""
    cases: list[Case] = []
    current: Case | None = None
    body: list[str] = []
    for raw in (DATA / name).read_text(encoding="utf-8").split("\n"):
        if raw.startswith("### "):
            current = Case(raw[4:].strip(), "", [])
            cases.append(current)
            body = []
        elif current is None:
            continue
        elif raw.startswith("--- "):
            if not current.expectations:
                current.text = "".join(line + "\n" for line in body).replace(TAB_MARK, "\t")
            kind, _, payload = raw[4:].partition(" ")
            current.expectations.append((kind, payload))
        elif not current.expectations:
            body.append(raw)
    return cases


def plain(value: Any) -> Any:
    """Dataclasses → dicts, tuples → lists: the shape the JSON expectations use."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def assert_subset(expected: Any, actual: Any, where: str = "") -> None:
    """Every key of ``expected`` (recursively) has the same value in ``actual``."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: no field {key!r} in {sorted(actual)}"
            assert_subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(expected) == len(actual), f"{where}: {expected!r} != {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: expected {expected!r}, got {actual!r}"


def load(payload: str) -> Any:
    return json.loads(payload)
