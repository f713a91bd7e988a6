"""``%container_run`` in line mode, driven through a real IPython shell and real containers."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbdock.errors import ImageNotFound
from nbdock.notebook._stream import stream_run


def test_load_ext_registers_the_magics_and_their_help(ip) -> None:
    found = ip.find_line_magic("container_run")
    assert found is not None and ip.find_cell_magic("container_run") is not None
    assert ip.find_line_magic("containers") is not None and ip.find_line_magic("images") is not None
    # magic_arguments puts the option list into the docstring that `%container_run?` shows
    for option in ("--rm", "--memory", "--read-only", "--lang", "--in NAME", "--out NAME", "IMAGE"):
        assert option.lower() in found.__doc__.lower(), option


def test_unload_and_reload() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbdock")
    shell.run_line_magic("unload_ext", "nbdock")
    assert shell.find_line_magic("container_run") is None
    assert "NbdockMagics" not in shell.magics_manager.registry
    shell.run_line_magic("load_ext", "nbdock")
    assert shell.find_line_magic("containers") is not None


def test_output_is_split_into_stdout_and_stderr_with_the_exit_code(ip) -> None:
    with capture_output() as captured:
        ip.run_line_magic("container_run", "--rm busybox sh -c 'echo out; echo err >&2; exit 3'")
    assert captured.stdout == "out\n"
    assert captured.stderr == "err\n"
    (badge,) = captured.outputs
    assert badge.data["text/plain"] == "exit code 3 (failed)"
    assert "nbdock-exit-failed" in badge.data["text/html"]
    assert ip.user_ns["_exit_code"] == 3


def test_success_is_a_green_exit_0(ip) -> None:
    with capture_output() as captured:
        ip.run_line_magic("container_run", "--rm busybox true")
    (badge,) = captured.outputs
    assert badge.data["text/plain"] == "exit code 0"
    assert "nbdock-exit-ok" in badge.data["text/html"]


def test_output_streams_while_the_container_runs(ip, client, tmp_path: Path, monkeypatch) -> None:
    """The container prints a line, then waits until the test has *seen* that line in the cell.

    Were output delivered only at the end, the container would wait in vain and exit 9.
    """
    sync = tmp_path / "sync"
    sync.mkdir()
    seen_while: list[str] = []

    class Cell(io.StringIO):
        def write(self, text: str) -> int:
            if "first" in text and not (sync / "go").exists():
                seen_while.append(client.containers.get("nb-stream").status)
                (sync / "go").touch()
            return super().write(text)

    cell = Cell()
    monkeypatch.setattr(sys, "stdout", cell)
    ip.run_line_magic(
        "container_run",
        f"--rm --name nb-stream -v {sync}:/sync busybox sh -c "
        "'echo first; i=0; until [ -e /sync/go ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; "
        "sleep 0.1; done; echo second'",
    )
    assert seen_while == ["running"]
    assert cell.getvalue().startswith("first\nsecond\n")
    assert ip.user_ns["_exit_code"] == 0


def test_docker_run_options_reach_the_container(ip, client, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "input.txt").write_text("from the host")
    shared.chmod(0o755)
    (shared / "input.txt").chmod(0o644)
    with capture_output() as captured:
        ip.run_line_magic(
            "container_run",
            f"--name nb-options -e GREETING=hi -w /data -u 1000:1000 --hostname nbhost "
            f"-v {shared}:/data:ro --tmpfs /scratch --read-only --memory 64m --cpus 0.5 "
            "--pids-limit 32 busybox sh -c "
            "'echo $GREETING; pwd; id -u; hostname; cat input.txt; echo; "
            "touch /scratch/ok && echo tmpfs-ok; touch /nope 2>/dev/null || echo rootfs-ro; "
            "touch /data/x 2>/dev/null || echo volume-ro'",
        )
    assert captured.stdout.splitlines() == [
        "hi", "/data", "1000", "nbhost", "from the host", "tmpfs-ok", "rootfs-ro", "volume-ro",
    ]
    host_config = client.containers.get("nb-options").attrs["HostConfig"]
    assert (host_config["Memory"], host_config["NanoCpus"], host_config["PidsLimit"]) == (
        64 * 1024 * 1024, 500_000_000, 32)
    client.containers.get("nb-options").remove()


def test_entrypoint_and_name_and_keep_without_rm(ip, client) -> None:
    with capture_output() as captured:
        ip.run_line_magic("container_run", "--name nb-kept --entrypoint echo busybox kept")
    assert captured.stdout == "kept\n"
    kept = client.containers.get("nb-kept")
    assert kept.status == "exited"
    kept.remove()


def test_rm_removes_the_container(ip, client) -> None:
    with capture_output():
        ip.run_line_magic("container_run", "--rm --name nb-gone busybox true")
    assert "nb-gone" not in [c.name for c in client.containers.list(all=True)]


def test_mount_cwd_mounts_the_notebook_directory_at_the_same_path(ip, tmp_path: Path,
                                                                   monkeypatch) -> None:
    (tmp_path / "notes.txt").write_text("beside the notebook")
    monkeypatch.chdir(tmp_path)
    with capture_output() as captured:
        ip.run_line_magic("container_run", "--rm --mount-cwd busybox sh -c 'pwd; cat notes.txt'")
    assert captured.stdout.splitlines() == [str(tmp_path.resolve()), "beside the notebook"]


def test_a_command_that_cannot_start_explains_why(ip) -> None:
    with capture_output() as captured:
        ip.run_line_magic("container_run", "--rm busybox no-such-program")
    (badge,) = captured.outputs
    assert badge.data["text/plain"].startswith("exit code 127 (failed): ")
    assert "no-such-program" in badge.data["text/plain"]


@pytest.mark.parametrize("line, expected", [
    ("", "IMAGE is required"),
    ("--memory 3x busybox true", "invalid size '3x'"),
    ("-v relative:/x busybox true", "not an absolute host path"),
    ("--in x busybox true", "--in need cell mode"),
    ("--network bridge busybox true", "not supported yet"),
    ("--no-such-option busybox", "unrecognized arguments"),
    ("busybox sh -c 'unclosed", "cannot split"),
])
def test_user_mistakes_are_usage_errors(ip, line: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected):
        ip.run_line_magic("container_run", line)


def test_usage_errors_show_without_a_traceback(ip) -> None:
    with capture_output() as captured:
        result = ip.run_cell("%container_run --memory 3x busybox true")
    assert isinstance(result.error_in_exec, UsageError)
    shown = captured.stdout + captured.stderr
    assert "invalid size" in shown and "Traceback" not in shown


def test_engine_errors_are_one_clear_line(ip) -> None:
    with pytest.raises(ImageNotFound):
        ip.run_line_magic("container_run", "no-such-image true")
    with capture_output() as captured:
        result = ip.run_cell("%container_run no-such-image true")
    assert isinstance(result.error_in_exec, ImageNotFound)  # the cell fails: Run All stops here
    shown = captured.stdout + captured.stderr
    assert "ImageNotFound: No such image: no-such-image" in shown
    assert "Traceback" not in shown and "nbdock/" not in shown


def test_an_interrupt_stops_the_container_and_keeps_its_last_words(client) -> None:
    """KeyboardInterrupt (the notebook's stop button) while output arrives: ``docker stop``."""
    attached = client.containers.run_attached(
        "busybox", ["sh", "-c", "trap 'echo bye; exit 5' TERM; echo first; "
                    "while :; do sleep 0.1; done"], name="nb-interrupt",
    )
    written: list[tuple[str, str]] = []

    def write(stream: str, text: str) -> None:
        written.append((stream, text))
        if len(written) == 1:
            raise KeyboardInterrupt

    outcome = stream_run(client, attached, write)
    assert outcome.interrupted
    assert outcome.exit_code == 5
    assert "".join(text for _, text in written) == "first\nbye\n"
    client.containers.get("nb-interrupt").remove()
