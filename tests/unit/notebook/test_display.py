"""The plain-text renderings: deterministic, and readable without a widget frontend."""

from __future__ import annotations

import time

import pytest

from nbdock.notebook._display import (
    clock,
    error_lines,
    exit_text,
    human_size,
    parse_time,
    state_text,
    text_table,
)


@pytest.mark.parametrize("args, text", [
    ((0,), "exit code 0"),
    ((3,), "exit code 3 (failed)"),
    ((127, 'exec: "x": not found'), 'exit code 127 (failed): exec: "x": not found'),
    ((143, "", True), "exit code 143 (interrupted)"),
    ((137, "", False, True), "exit code 137 (OOM killed)"),
    ((None,), "exit code unknown (the container's supervisor vanished)"),
])
def test_exit_text(args: tuple, text: str) -> None:
    assert exit_text(*args) == text


@pytest.mark.parametrize("size, text", [
    (None, "-"), (999, "999B"), (2_129_920, "2.13MB"), (1_500_000_000, "1.5GB"),
])
def test_human_size_uses_dockers_decimal_units(size: int | None, text: str) -> None:
    assert human_size(size) == text


def test_clock() -> None:
    assert [clock(s) for s in (0, 59.9, 61, 3725)] == ["0:00", "0:59", "1:01", "1:02:05"]


def test_parse_time_reads_engine_stamps_and_go_zero_time() -> None:
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None
    stamp = time.time()
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + ".250000000Z"
    assert parse_time(iso) == pytest.approx(int(stamp) + 0.25)


def test_state_text_is_the_stable_part_of_status() -> None:
    assert state_text({"Status": "running"}) == "running"
    assert state_text({"Status": "exited", "ExitCode": 3}) == "exited (3)"
    assert state_text({"Status": "exited", "ExitCode": 137, "OOMKilled": True}) == (
        "exited (137, OOM killed)")


def test_text_table_aligns_like_docker() -> None:
    assert text_table(["A", "LONGER"], [["x", "1"], ["yyyy", "2"]]).splitlines() == [
        "A      LONGER", "x      1", "yyyy   2",
    ]


def test_error_lines_are_short() -> None:
    lines = error_lines(ValueError("first line\n  hint: second"))
    assert lines == ["\x1b[31mValueError: first line\x1b[0m", "  hint: second"]
