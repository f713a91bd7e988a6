"""``nbdock build`` / ``nbdock history`` as a user runs them: plain and json progress, --check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.build.conftest import write_context


def nbdock(root: Path, *args: str, cwd: Path | None = None, stdin: bytes | None = None):  # noqa: ANN201
    return subprocess.run(
        [sys.executable, "-m", "nbdock.cli.main", *args], capture_output=True, input=stdin,
        env={**os.environ, "NBDOCK_ROOT": str(root)}, timeout=120, cwd=cwd,
    )


def test_plain_progress_explains_each_step(engine_root: Path, client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN echo hello-from-run\nCOPY f.txt /f.txt\n",
                  {"f.txt": "v1"})
    first = nbdock(engine_root, "build", "--progress", "plain", "-t", "nbtest/cli", str(ctx))
    assert first.returncode == 0, first.stderr.decode()
    lines = first.stderr.decode().splitlines()
    assert "#1 [1/3] FROM docker.io/library/busybox:latest@sha256:" in lines[1]
    assert "#2 [2/3] RUN echo hello-from-run" in lines
    assert any(line.startswith("#2 ") and line.endswith(" hello-from-run") for line in lines)
    (ctx / "f.txt").write_text("v2")
    second = nbdock(engine_root, "build", "--progress", "plain", "-t", "nbtest/cli", str(ctx))
    lines = second.stderr.decode().splitlines()
    assert "#2 CACHED" in lines
    assert "#3 rebuilding: file changed: f.txt" in lines
    assert any(line.startswith("#3 DONE") and "layer" in line for line in lines)
    assert "naming to nbtest/cli:latest" in second.stderr.decode()


def test_json_progress_is_one_event_per_line(engine_root: Path, client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nENV A=1\n")
    result = nbdock(engine_root, "build", "--progress", "json", str(ctx))
    assert result.returncode == 0, result.stderr.decode()
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert events[0]["type"] == "build-started" and events[-1]["type"] == "build-finished"
    assert {"step-started", "step-finished"} <= {e["type"] for e in events}


def test_quiet_prints_the_id_and_failure_exit_code(engine_root: Path, client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nLABEL q=1\n")
    result = nbdock(engine_root, "build", "-q", str(ctx))
    assert result.returncode == 0 and result.stdout.decode().startswith("sha256:")
    write_context(ctx, "FROM busybox\nRUN echo about to fail; exit 4\n")
    failed = nbdock(engine_root, "build", "--progress", "plain", str(ctx))
    assert failed.returncode == 1
    stderr = failed.stderr.decode()
    assert "exit code 4" in stderr and "about to fail" in stderr and "Dockerfile:2" in stderr


def test_dockerfile_from_stdin_and_build_args(engine_root: Path, client, ctx: Path) -> None:
    dockerfile = b"FROM busybox\nARG WHO\nRUN echo \"hi $WHO\" > /who.txt\n"
    result = nbdock(engine_root, "build", "-f", "-", "--build-arg", "WHO=cli", "-t",
                    "nbtest/stdin", str(ctx), stdin=dockerfile)
    assert result.returncode == 0, result.stderr.decode()
    assert client.containers.run("nbtest/stdin", ["cat", "/who.txt"], remove=True) == b"hi cli\n"


def test_check_lints_without_building(engine_root: Path, client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox as Builder\nRUN apt-get install curl\nCMD echo hi\n")
    result = nbdock(engine_root, "build", "--check", str(ctx))
    out = result.stdout.decode()
    assert result.returncode == 0
    for rule in ("FromAsCasing", "AptGetInstallWithoutYes", "JSONArgsRecommended"):
        assert rule in out
    write_context(ctx, "# check=error=true\nFROM busybox\nCMD echo hi\n")
    assert nbdock(engine_root, "build", "--check", str(ctx)).returncode == 1
    write_context(ctx, "FROM busybox\nCMD [\"echo\", \"hi\"]\n")
    clean = nbdock(engine_root, "build", "--check", str(ctx))
    assert clean.returncode == 0 and "no warnings" in clean.stdout.decode()


def test_history_lists_layers_and_instructions(engine_root: Path, client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nENV K=v\nRUN echo data > /data.txt\n")
    assert nbdock(engine_root, "build", "-q", "-t", "nbtest/hist", str(ctx)).returncode == 0
    out = nbdock(engine_root, "history", "nbtest/hist").stdout.decode().splitlines()
    assert out[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
    assert "RUN /bin/sh -c echo data > /data.txt" in out[1]
    assert "ENV K=v" in out[2] and " 0B " in out[2]
    assert out[3].startswith("<missing>")
