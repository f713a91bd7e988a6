"""The magics inside a real ipykernel: output reaches the frontend while the container runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def iopub_until_idle(kernel: Any, msg_id: str, on_message: Any = None) -> list[dict[str, Any]]:
    """Every iopub message of one execution, in order, until the kernel goes idle."""
    messages = []
    while True:
        message = kernel.get_iopub_msg(timeout=60)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(message)
        if on_message is not None:
            on_message(message)
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return messages


def test_stream_messages_arrive_while_the_container_runs(kernel, tmp_path: Path) -> None:
    """The container waits for a file the test creates only on *receiving* its first line.

    If the kernel sent output only at the end, the container would give up and exit 9.
    """
    sync = tmp_path / "sync"
    sync.mkdir()

    def on_message(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream" and "first" in message["content"]["text"]:
            (sync / "go").touch()

    msg_id = kernel.execute(
        f"%container_run --rm -v {sync}:/sync busybox sh -c 'echo first; i=0; "
        "until [ -e /sync/go ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.1; done; "
        "echo second'"
    )
    messages = iopub_until_idle(kernel, msg_id, on_message)
    kinds = [m["msg_type"] for m in messages]
    streams = [m["content"]["text"] for m in messages if m["msg_type"] == "stream"]
    assert "".join(streams) == "first\nsecond\n"
    assert streams[0] == "first\n"  # a message of its own, sent before the container went on
    badge = next(m for m in messages if m["msg_type"] == "display_data")
    assert badge["content"]["data"]["text/plain"] == "exit code 0"
    assert kinds.index("display_data") > kinds.index("stream")


def test_detached_widget_and_engine_errors_in_a_kernel(kernel, client) -> None:
    msg_id = kernel.execute("%container_run -d --rm --name nb-kernel-ticker busybox sleep 30")
    shown = [m for m in iopub_until_idle(kernel, msg_id) if m["msg_type"] == "display_data"]
    (display,) = shown
    data = display["content"]["data"]
    assert WIDGET_VIEW in data
    assert data["text/plain"] == "container nb-kernel-ticker (image busybox) started detached"
    client.containers.get("nb-kernel-ticker").kill()

    msg_id = kernel.execute("%container_run no-such-image true")
    messages = iopub_until_idle(kernel, msg_id)
    (error,) = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert error["ename"] == "ImageNotFound"
    assert error["traceback"] == ["\x1b[31mImageNotFound: No such image: no-such-image\x1b[0m"]


def test_build_progress_widget_streams_run_output_through_the_kernel(kernel, tmp_path: Path) -> None:
    """The RUN prints, then sleeps a unique number of seconds; the test kills that sleep when a
    widget update carrying the printed line reaches the frontend side (the iopub channel)."""
    from tests.unit.notebook.test_dockerfile_magic import _kill_sleep

    seconds = 30 + int.from_bytes(os.urandom(2), "big") % 30  # a failure costs at most a minute
    killed: list[int] = []

    def on_message(message: dict[str, Any]) -> None:
        if message["msg_type"] != "comm_msg" or killed:
            return
        state = message["content"]["data"].get("state", {})
        if "first" in str(state.get("value", "")):
            killed.extend(_kill_sleep(seconds))

    msg_id = kernel.execute(
        f"%%dockerfile --no-cache --context {tmp_path}\n"
        f"FROM busybox\nRUN echo first; sleep {seconds}; echo second\n"
    )
    messages = iopub_until_idle(kernel, msg_id, on_message)
    assert len(killed) == 1
    assert not [m for m in messages if m["msg_type"] == "error"]
    shown = [m["content"]["data"] for m in messages if m["msg_type"] == "display_data"]
    assert [d["text/plain"].splitlines()[0] for d in shown] == ["build (untagged)", shown[1][
        "text/plain"].splitlines()[0]]
    assert all(WIDGET_VIEW in d for d in shown)
