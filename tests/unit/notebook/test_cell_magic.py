"""``%%container_run``: the cell as a script in the container, values in with --in, out with --out."""

from __future__ import annotations

import fractions
import os
import shutil
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from tests.conftest import need

# A Python inside a busybox container without a registry: the host's own interpreter, bind-mounted
# read-only (on a merged-/usr Debian, /usr holds everything it needs). The container is as isolated
# as any other; only its /usr comes from the host.
HOST_PYTHON = "-v /usr:/usr:ro -v /usr/lib:/lib:ro -v /usr/lib64:/lib64:ro"


@pytest.fixture
def python_mounts() -> str:
    need(Path("/lib").is_symlink() and Path("/lib64").is_symlink(), "a merged-/usr host")
    need(shutil.which("python3", path="/usr/bin") is not None, "/usr/bin/python3 on the host")
    return HOST_PYTHON


def run_cell(ip, line: str, body: str) -> object:
    with capture_output() as captured:
        ip.run_cell_magic("container_run", line, body)
    return captured


def test_sh_cell_gets_inputs_as_env_and_returns_outputs_as_strings(ip) -> None:
    ip.user_ns.update(name="notebook", numbers=[3, 4, 5], config={"k": "v"})
    captured = run_cell(ip, "--rm --lang sh --in name numbers config --out total echo busybox", (
        'echo "hello $name $numbers $config"\n'
        "total=0; for n in $(echo \"$numbers\" | tr -d '[],'); do total=$((total + n)); done\n"
        'echo "$total" > "$NBDOCK_OUT/total"\n'
        'cat "$NBDOCK_IN/name" > "$NBDOCK_OUT/echo"\n'
    ))
    assert captured.stdout == 'hello notebook [3, 4, 5] {"k": "v"}\n'
    assert captured.outputs[-1].data["text/plain"] == "exit code 0"
    assert ip.user_ns["total"] == "12"
    assert ip.user_ns["echo"] == "notebook"


def test_sh_big_inputs_come_as_files_only(ip) -> None:
    ip.user_ns["big"] = "x" * 100_000
    captured = run_cell(ip, "--rm --lang sh --in big --out size busybox", (
        'echo "${big:-unset}"\nwc -c < "$NBDOCK_IN/big" | tr -d " " > "$NBDOCK_OUT/size"\n'
    ))
    assert captured.stdout == "unset\n"
    assert ip.user_ns["size"] == "100000"


def test_cell_script_arguments_follow_the_image(ip) -> None:
    captured = run_cell(ip, "--rm --lang sh busybox one 'two words'", 'echo "$#: $1 / $2"\n')
    assert captured.stdout == "2: one / two words\n"


def test_an_out_value_the_script_did_not_write_is_a_usage_error(ip) -> None:
    with pytest.raises(UsageError, match=r"did not write \$NBDOCK_OUT/missing"):
        run_cell(ip, "--rm --lang sh --out missing busybox", "true\n")


def test_a_planted_symlink_is_not_followed_back_to_the_host(ip, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host only")
    ip.user_ns.pop("leak", None)
    with pytest.raises(UsageError, match="leak"):
        run_cell(ip, "--rm --lang sh --out leak busybox", f'ln -s {secret} "$NBDOCK_OUT/leak"\n')
    assert "leak" not in ip.user_ns


def test_the_io_directory_is_read_only_but_out(ip) -> None:
    captured = run_cell(ip, "--rm --lang sh busybox", (
        "touch /run/nbdock-cell/x 2>/dev/null || echo io-ro\n"
        'touch "$NBDOCK_OUT/y" && echo out-rw\n'
    ))
    assert captured.stdout == "io-ro\nout-rw\n"


def test_a_failed_script_sets_no_outputs(ip) -> None:
    ip.user_ns.pop("never", None)
    captured = run_cell(ip, "--rm --lang sh --out never busybox",
                        'echo 1 > "$NBDOCK_OUT/never"; exit 4\n')
    assert captured.outputs[-1].data["text/plain"] == "exit code 4 (failed)"
    assert "not set, the script failed" in captured.stderr
    assert "never" not in ip.user_ns


def test_python_is_the_default_and_needs_python3_in_the_image(ip) -> None:
    captured = run_cell(ip, "--rm busybox", "print('hi')\n")
    text = captured.outputs[-1].data["text/plain"]
    assert text.startswith("exit code 127 (failed)") and "no python3" in text


@pytest.mark.parametrize("line, expected", [
    ("--rm --in undefined_name busybox", "not defined in the notebook: undefined_name"),
    ("--rm --in 'not a name' busybox", "not a valid variable name"),
    ("--rm --entrypoint sh busybox", "--entrypoint does not apply"),
    ("-d --out x busybox", "cannot come back from a detached"),
    ("--rm --lang ruby busybox", "invalid choice"),
    ("--rm --in busybox", "IMAGE is required"),
])
def test_cell_mode_usage_errors(ip, line: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected):
        ip.run_cell_magic("container_run", line, "true\n")


def test_a_non_json_value_cannot_go_to_sh(ip) -> None:
    ip.user_ns["frac"] = fractions.Fraction(1, 3)
    with pytest.raises(UsageError, match="Fraction is not JSON-able"):
        ip.run_cell_magic("container_run", "--rm --lang sh --in frac busybox", "true\n")


def test_python_cell_round_trip(ip, python_mounts: str) -> None:
    ip.user_ns.update(data={"a": [1, 2, 3]}, frac=fractions.Fraction(1, 3))
    captured = run_cell(ip, f"--rm {python_mounts} --in data frac --out total info busybox", (
        "import os, sys\n"
        "total = sum(data['a'])\n"
        "info = {'pid': os.getpid(), 'third': str(frac)}\n"
        "print('inside', os.getpid())\n"
    ))
    assert captured.stdout == "inside 1\n"
    assert ip.user_ns["total"] == 6
    assert ip.user_ns["info"] == {"pid": 1, "third": "1/3"}


def test_python_non_json_outputs_need_pickle_out(ip, python_mounts: str) -> None:
    ip.user_ns["frac"] = fractions.Fraction(1, 3)
    ip.user_ns.pop("double", None)
    with pytest.raises(UsageError, match="Fraction is not JSON-able; add --pickle-out"):
        run_cell(ip, f"--rm {python_mounts} --in frac --out double busybox", "double = frac * 2\n")
    assert "double" not in ip.user_ns
    run_cell(ip, f"--rm {python_mounts} --pickle-out --in frac --out double busybox",
             "double = frac * 2\n")
    assert ip.user_ns["double"] == fractions.Fraction(2, 3)


def test_python_exceptions_show_the_cells_own_traceback(ip, python_mounts: str) -> None:
    captured = run_cell(ip, f"--rm {python_mounts} busybox", "x = 1\n1 / 0\n")
    assert 'File "/run/nbdock-cell/cell.py", line 2' in captured.stderr
    assert "ZeroDivisionError" in captured.stderr
    assert "run.py" not in captured.stderr  # the runner's own frame is left out
    assert captured.outputs[-1].data["text/plain"] == "exit code 1 (failed)"


def test_python_cell_as_another_user_can_still_return_values(ip, python_mounts: str) -> None:
    run_cell(ip, f"--rm -u 65534:65534 {python_mounts} --out who busybox",
             "import os\nwho = os.getuid()\n")
    assert ip.user_ns["who"] == 65534


def test_cell_files_are_cleaned_up_after_success_and_mistakes(ip) -> None:
    import tempfile

    def leftovers() -> set[str]:
        return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("nbdock-cell-")}

    before = leftovers()
    run_cell(ip, "--rm --lang sh busybox", "true\n")
    ip.user_ns["frac"] = fractions.Fraction(1, 3)
    with pytest.raises(UsageError):
        ip.run_cell_magic("container_run", "--rm --lang sh --in frac busybox", "true\n")
    with pytest.raises(UsageError):
        ip.run_cell_magic("container_run", "--rm --memory 3x --lang sh busybox", "true\n")
    assert leftovers() <= before
