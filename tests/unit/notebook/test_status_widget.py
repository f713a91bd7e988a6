"""The detached-container status widget, checked as traitlets state over real containers."""

from __future__ import annotations

import time
from collections.abc import Callable

from IPython.utils.capture import capture_output

from nbdock.notebook.status import ContainerStatus
from tests.unit.notebook.conftest import magics

TICKER = ("sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo tick $i; "
          "sleep 0.2; done")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def wait_for(condition: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Wait for a state change the widget's threads make (a bound, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def test_detached_run_shows_a_live_widget_with_a_stable_text(ip, client) -> None:
    with capture_output() as captured:
        ip.run_line_magic("container_run", "-d --name nb-ticker busybox " + " ".join(
            [TICKER[0], TICKER[1], repr(TICKER[2])]))
    (shown,) = captured.outputs
    assert WIDGET_VIEW in shown.data
    assert shown.data["text/plain"] == "container nb-ticker (image busybox) started detached"
    status = next(w for w in magics(ip)._status_widgets if w.container_name == "nb-ticker")
    assert shown.data[WIDGET_VIEW]["model_id"] == status.model_id
    assert status.state == "running" and status.image == "busybox"
    wait_for(lambda: len(status.log_tail) >= 2, "log lines in the widget")
    assert status.log_tail[:2] == ["tick 1", "tick 2"]
    wait_for(lambda: status.cpu_percent is not None, "a CPU reading")
    assert status.memory_bytes and status.memory_bytes > 0
    assert status.uptime_seconds > 0
    assert "nbdock-state-running" in status._header.value
    assert not status.stop_button.disabled

    status.stop_button.click()  # what the browser's click does, through the same handler
    wait_for(lambda: status.state == "exited", "the container to stop")
    assert status.exit_code == 0
    assert status.stop_button.disabled and not status.remove_button.disabled
    assert "exited (0)" in status._header.value

    status.remove_button.click()
    wait_for(lambda: status.state == "removed", "the container to be removed")
    assert "nb-ticker" not in [c.name for c in client.containers.list(all=True)]
    assert status.remove_button.disabled
    assert status.text() == "container nb-ticker (image busybox) started detached"


def test_the_widget_follows_a_container_stopped_elsewhere(client) -> None:
    container = client.containers.run("busybox", list(TICKER), detach=True, name="nb-elsewhere")
    status = ContainerStatus(container, interval=0.1)
    status.watch()
    try:
        client.containers.get("nb-elsewhere").stop()
        wait_for(lambda: status.state == "exited", "the poller to see the stop")
        assert status.exit_code == 0
        assert status.cpu_percent is None  # no stats for a stopped container
    finally:
        status.unwatch()
        container.remove(force=True)


def test_a_failed_container_shows_red_with_its_exit_code(client) -> None:
    container = client.containers.run("busybox", ["sh", "-c", "echo boom >&2; exit 7"],
                                      detach=True, name="nb-fails")
    client.containers.get("nb-fails").wait()
    status = ContainerStatus(container)
    assert (status.state, status.exit_code) == ("exited", 7)
    assert "#cf222e" in status._header.value  # the red badge
    container.remove()


def test_auto_removed_container_ends_as_removed(ip, client) -> None:
    with capture_output():
        ip.run_line_magic("container_run", "-d --rm --name nb-autorm busybox sleep 30")
    status = next(w for w in magics(ip)._status_widgets if w.container_name == "nb-autorm")
    status.stop_timeout = 1  # sleep as PID 1 ignores SIGTERM: the stop ends with SIGKILL
    status.stop()
    wait_for(lambda: status.state == "removed", "the supervisor's auto-remove")


def test_containers_magic_refreshes_status_widgets(ip, client) -> None:
    with capture_output():
        ip.run_line_magic("container_run", "-d --name nb-refresh busybox sleep 30")
    status = next(w for w in magics(ip)._status_widgets if w.container_name == "nb-refresh")
    status.unwatch()  # no poller: only %containers can tell it what happened
    client.containers.get("nb-refresh").remove(force=True)
    assert status.state == "running"
    with capture_output():
        ip.run_line_magic("containers", "")
    assert status.state == "removed"


def test_images_magic_refreshes_status_widgets_too(ip, client) -> None:
    with capture_output():
        ip.run_line_magic("container_run", "-d --name nb-refresh2 busybox sleep 30")
    status = next(w for w in magics(ip)._status_widgets if w.container_name == "nb-refresh2")
    status.unwatch()
    client.containers.get("nb-refresh2").kill()
    client.containers.get("nb-refresh2").wait()
    with capture_output():
        ip.run_line_magic("images", "")
    assert (status.state, status.exit_code) == ("exited", 137)
    client.containers.get("nb-refresh2").remove()


def test_detached_cell_script_runs_in_the_background(ip, client) -> None:
    with capture_output():
        ip.run_cell_magic("container_run", "-d --name nb-bgscript --lang sh busybox",
                          "echo from the cell; sleep 0.2\n")
    status = next(w for w in magics(ip)._status_widgets if w.container_name == "nb-bgscript")
    wait_for(lambda: status.state == "exited", "the script to finish")
    wait_for(lambda: status.log_tail == ["from the cell"], "its output in the widget")
    client.containers.get("nb-bgscript").remove()
