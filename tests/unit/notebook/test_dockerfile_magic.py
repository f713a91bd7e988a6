"""``%%dockerfile``: real builds through the magic, plain and widget progress, cache, failures."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbdock.errors import BuildError, DockerfileError
from nbdock.notebook._display import human_size
from nbdock.notebook.build_progress import BuildProgress

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    directory = tmp_path / "context"
    directory.mkdir()
    (directory / "app.txt").write_text("version 1\n")
    return directory


def shown_widget(model_id: str):  # noqa: ANN201 - the live widget a display refers to
    from ipywidgets.widgets.widget import _instances

    return _instances[model_id]


def dockerfile(token: str) -> str:
    return f"FROM busybox\nRUN echo prepare {token}\nCOPY app.txt /app/\nRUN cat /app/app.txt\n"


def build(ip, line: str, cell: str):
    with capture_output() as captured:
        ip.run_cell_magic("dockerfile", line, cell)
    return captured


def stack_rows(text: str) -> list[list[str]]:
    """The layer stack's rows as (step, result) pairs, read from its text/plain."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("STEP"))
    start = lines[header].index("RESULT")
    end = lines[header].index("SIZE")
    return [[line.split()[0], line[start:end].strip()] for line in lines[header + 1:-1]]


def test_build_plain_progress_then_the_layer_stack(ip, client, context: Path) -> None:
    token = uuid.uuid4().hex
    captured = build(ip, f"-t nb-build:1 --context {context} --name built", dockerfile(token))
    lines = captured.stdout.splitlines()
    assert lines[0].startswith("#1 [1/4] FROM docker.io/library/busybox")
    assert f"#2 [2/4] RUN echo prepare {token}" in lines
    assert f"#2 prepare {token}" in lines  # RUN output, prefixed like BuildKit's plain progress
    assert "#4 version 1" in lines
    (stack,) = captured.outputs
    assert WIDGET_VIEW in stack.data
    text = stack.data["text/plain"]
    assert text.splitlines()[0] == "image nb-build:1"
    size = client.images.get("nb-build:1").attrs["Size"]
    assert text.splitlines()[-1].startswith(f"image size {human_size(size)}, ")
    assert stack_rows(text) == [["#1", "done"], ["#2", "built (new step)"],
                                ["#3", "built (earlier step rebuilt)"],
                                ["#4", "built (earlier step rebuilt)"]]
    assert ip.user_ns["built"].tags == ["nb-build:1"]
    assert client.images.get("nb-build:1").id == ip.user_ns["built"].id


def test_the_cache_at_work(ip, context: Path) -> None:
    cell = dockerfile(uuid.uuid4().hex)
    build(ip, f"--context {context}", cell)
    again = build(ip, f"--context {context}", cell)
    assert stack_rows(again.outputs[-1].data["text/plain"]) == [
        ["#1", "done"], ["#2", "CACHED"], ["#3", "CACHED"], ["#4", "CACHED"]]
    assert "#3 CACHED" in again.stdout.splitlines()
    (context / "app.txt").write_text("version 2\n")
    changed = build(ip, f"--context {context}", cell)
    assert stack_rows(changed.outputs[-1].data["text/plain"]) == [
        ["#1", "done"], ["#2", "CACHED"], ["#3", "built (files changed)"],
        ["#4", "built (earlier step rebuilt)"]]
    assert "#4 version 2" in changed.stdout.splitlines()


def test_widget_progress_and_layer_stack(ip, context: Path) -> None:
    captured = build(ip, f"--progress widget --context {context}", dockerfile(uuid.uuid4().hex))
    assert captured.stdout == ""  # no plain lines when the widget shows progress
    progress_output, stack_output = captured.outputs
    assert progress_output.data["text/plain"] == "build (untagged)"
    assert WIDGET_VIEW in progress_output.data and WIDGET_VIEW in stack_output.data
    progress = shown_widget(progress_output.data[WIDGET_VIEW]["model_id"])
    assert progress.state == "done" and progress.layout.display == "none"
    assert [s["status"] for s in progress.steps] == ["done", "done", "done", "done"]
    assert "version 1" in progress.steps[3]["output"]
    stack = shown_widget(stack_output.data[WIDGET_VIEW]["model_id"])
    assert [s["step"] for s in stack.steps] == [1, 2, 3, 4]
    assert stack.steps[2]["size"] and stack.steps[2]["size"] > 0


def test_run_output_streams_while_the_step_runs(ip, context: Path, monkeypatch) -> None:
    """The RUN prints, then sleeps a unique number of seconds. The test kills that sleep when
    it sees the printed line: possible only if the line came while the step was still running."""
    seconds = 30 + int.from_bytes(os.urandom(2), "big") % 30  # a failure costs at most a minute
    killed: list[int] = []

    class Cell:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> int:
            self.text += text
            if "#2 first" in text and not killed:
                killed.extend(_kill_sleep(seconds))
            return len(text)

        def flush(self) -> None:
            pass

    cell = Cell()
    monkeypatch.setattr(sys, "stdout", cell)
    ip.run_cell_magic("dockerfile", f"--no-cache --context {context}",
                      f"FROM busybox\nRUN echo first; sleep {seconds}; echo second\n")
    assert len(killed) == 1
    assert "#2 second" in cell.text


def _kill_sleep(seconds: int) -> list[int]:
    wanted = f"sleep\0{seconds}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if handle.read() == wanted:
                    os.kill(int(entry), signal.SIGKILL)
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_a_failed_run_shows_the_line_exit_code_output_and_what_stays_cached(ip, context) -> None:
    token = uuid.uuid4().hex
    cell = f"FROM busybox\nRUN echo ok {token}\nRUN echo failing {token} && exit 4\n"
    with capture_output() as captured:
        result = ip.run_cell(f"%%dockerfile --progress widget --context {context}\n{cell}")
    assert isinstance(result.error_in_exec, BuildError)
    progress_output, failure = captured.outputs
    progress = shown_widget(progress_output.data[WIDGET_VIEW]["model_id"])
    assert progress.state == "failed"
    lines = failure.data["text/plain"].splitlines()
    assert lines[:3] == [f"build failed at line 3: RUN echo failing {token} && exit 4",
                         "exit code 4", f"  failing {token}"]
    assert lines[3].startswith("kept: #1 FROM docker.io/library/busybox:latest@sha256:")
    assert lines[4:] == [f"kept: #2 RUN echo ok {token}"]
    assert 'class="nbdock-failed-line"' in failure.data["text/html"]
    shown = captured.stdout + captured.stderr
    assert "BuildError: Dockerfile:3:" in shown and "Traceback" not in shown
    assert "stay cached" not in shown  # the one-line error leaves the details to the view


def test_a_dockerfile_mistake_marks_its_line(ip, context: Path) -> None:
    with capture_output() as captured, pytest.raises(DockerfileError):
        ip.run_cell_magic("dockerfile", f"--context {context}", "FROM busybox\nRUNN echo hi\n")
    (failure,) = captured.outputs
    assert failure.data["text/plain"].startswith("build failed at line 2: RUNN echo hi")


def test_build_args_and_target(ip, context: Path) -> None:
    cell = ("FROM busybox AS base\nARG GREETING=hello\nRUN echo \"$GREETING from base\"\n"
            "FROM base AS final\nRUN echo never built\n")
    captured = build(ip, f"--no-cache --context {context} --build-arg GREETING=hi --target base",
                     cell)
    assert "#3 hi from base" in captured.stdout.splitlines()
    assert "never built" not in captured.stdout


@pytest.mark.parametrize("line, cell, expected", [
    ("", "   \n", "the cell is empty"),
    ("--context /no/such/dir", "FROM busybox\n", "not a directory"),
    ("--name 'not a name'", "FROM busybox\n", "not a valid variable name"),
    ("--build-arg =x", "FROM busybox\n", "use KEY=VALUE"),
    ("--progress fancy", "FROM busybox\n", "invalid choice"),
])
def test_dockerfile_usage_errors(ip, line: str, cell: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected):
        ip.run_cell_magic("dockerfile", line, cell)


def test_help_lists_the_options(ip) -> None:
    doc = ip.find_cell_magic("dockerfile").__doc__
    for option in ("--tag", "--context", "--build-arg", "--target", "--no-cache", "--name"):
        assert option in doc


def test_progress_widget_takes_events_from_any_thread() -> None:
    progress = BuildProgress("threads")
    events = [{"type": "step-started", "id": n, "index": n, "total": 8, "text": f"RUN step {n}"}
              for n in range(1, 9)]
    threads = [threading.Thread(target=progress.on_event, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(s["step"] for s in progress.steps) == list(range(1, 9))
    assert len(progress.children) == 1 + 8  # the heading and one row per step


def test_throttled_output_is_drawn_even_if_the_step_goes_quiet() -> None:
    progress = BuildProgress("quiet")
    progress.on_event({"type": "step-started", "id": 1, "index": 1, "total": 1, "text": "RUN x"})
    progress.on_event({"type": "step-output", "id": 1, "stream": "stdout", "text": "one\n"})
    progress.on_event({"type": "step-output", "id": 1, "stream": "stdout", "text": "two\n"})
    row = progress.children[1]
    deadline = time.monotonic() + 10
    while "two" not in row.value:  # no further event comes: only the trailing redraw can show it
        assert time.monotonic() < deadline, "the last output was never drawn"
        time.sleep(0.05)
    assert "one\ntwo" in row.value
