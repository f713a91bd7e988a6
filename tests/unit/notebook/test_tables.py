"""``%containers`` and ``%images``: HTML tables with stable text fallbacks."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output


def shown(ip, magic: str, line: str = "") -> dict[str, str]:
    with capture_output() as captured:
        ip.run_line_magic(magic, line)
    (output,) = captured.outputs
    return output.data


def test_containers_lists_running_by_default_and_all_with_a(ip, client) -> None:
    running = client.containers.run("busybox", "sleep 30", detach=True, name="nb-tab-up")
    done = client.containers.run("busybox", ["sh", "-c", "exit 2"], detach=True, name="nb-tab-done")
    done.wait()
    try:
        default = shown(ip, "containers", "--filter name=nb-tab-")
        assert default["text/plain"].splitlines() == [
            "CONTAINER ID   IMAGE     COMMAND    STATUS    NAMES",
            f"{running.short_id}   busybox   sleep 30   running   nb-tab-up",
        ]
        every = shown(ip, "containers", "-a -f name=nb-tab-")
        lines = every["text/plain"].splitlines()
        assert len(lines) == 3
        assert f"{done.short_id}   busybox   sh -c exit 2   exited (2)   nb-tab-done" in lines
        html = every["text/html"]
        assert html.startswith('<table class="nbdock-containers">')
        assert "nb-tab-up" in html and "Up " in html and "nbdock-state-running" in html
        exited = shown(ip, "containers", "-a -f status=exited -f name=nb-tab-")
        assert "nb-tab-done" in exited["text/plain"] and "nb-tab-up" not in exited["text/plain"]
    finally:
        running.remove(force=True)
        done.remove()


def test_containers_filters_by_label_and_ancestor(ip, client) -> None:
    with capture_output():
        ip.run_line_magic("container_run", "--name nb-labelled -l team=data busybox true")
    try:
        assert "nb-labelled" in shown(ip, "containers", "-a -f label=team=data")["text/plain"]
        assert shown(ip, "containers", "-a -f label=team=ops -f name=nb-labelled")["text/plain"] == (
            "no containers")
        assert "nb-labelled" in shown(ip, "containers", "-a -f ancestor=busybox")["text/plain"]
    finally:
        client.containers.get("nb-labelled").remove()


def test_a_bad_filter_is_a_usage_error(ip) -> None:
    with pytest.raises(UsageError, match="--filter 'colour=red'"):
        ip.run_line_magic("containers", "-f colour=red")


def test_images_table(ip, client) -> None:
    image = client.images.get("busybox")
    data = shown(ip, "images")
    lines = data["text/plain"].splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"]
    assert any(line.split()[:3] == ["busybox", "latest", image.short_id] for line in lines[1:])
    assert '<table class="nbdock-images">' in data["text/html"] and "CREATED" in data["text/html"]
    assert shown(ip, "images", "busybox:latest")["text/plain"].count("busybox") == 1
    assert shown(ip, "images", "no-such-repo")["text/plain"] == "no images"
