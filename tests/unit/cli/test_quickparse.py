"""``nbdock run`` read without argparse gives argparse's namespace, or defers to argparse."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from nbdock.cli.main import build_parser, parse_args
from nbdock.cli.quickparse import _FLAGS, _LISTS, _VALUES, parse_run

READ_QUICKLY = [
    ["run", "busybox"],
    ["run", "--rm", "busybox", "/bin/true"],
    ["run", "--rm", "-e", "A=1", "--name", "x", "-h", "host", "busybox", "sh", "-c", "exit 3"],
    ["run", "-d", "--detach", "--read-only", "busybox", "sleep", "1"],
    ["run", "--name=web", "--env=A=1", "-e", "B", "--env", "C=3", "busybox"],
    ["run", "-v", "/a:/b:ro", "--volume", "/c:/d", "--tmpfs", "/t", "--tmpfs=/u:size=1m", "x"],
    ["run", "-m", "32m", "--memory=64m", "--cpus", "0.5", "--pids-limit", "64", "busybox"],
    ["run", "--pids-limit", " 7", "--pids-limit=1_0", "busybox"],
    ["run", "--network", "host", "--net=none", "--network=host", "busybox"],
    ["run", "-l", "a=b", "--label", "c", "--label=d=e", "busybox"],
    ["run", "-w", "/tmp", "--workdir=/", "-u", "1:2", "--user=nobody", "busybox"],
    ["run", "--hostname", "h", "--hostname=i", "--entrypoint", "sh", "busybox"],
    ["run", "busybox", "--rm", "-e", "X", "sh", "-c", "echo $0", "--name"],
    ["run", "busybox:1.36", "sh", "-c", "a=1; echo -n"],
    ["run", "-e", "K=a b", "busybox", ""],
]

DEFERRED = [
    [], ["ps"], ["create", "busybox"], ["run"], ["run", "--rm"], ["run", "--help"],
    ["run", "--rm", "--", "busybox"], ["run", "busybox", "sh", "--", "x"],
    ["run", "--na", "x", "busybox"], ["run", "--mem", "1m", "busybox"], ["run", "-dt", "busybox"],
    ["run", "-eA=1", "busybox"], ["run", "-e=A=1", "busybox"], ["run", "--rm=1", "busybox"],
    ["run", "--name", "-x", "busybox"], ["run", "--cpus", "-1", "busybox"],
    ["run", "--name=", "busybox"], ["run", "--name", "", "busybox"], ["run", ""],
    ["run", "--network", "bridge", "busybox"], ["run", "--pids-limit", "many", "busybox"],
    ["run", "--name"], ["run", "-", "busybox"], ["run", "-x", "busybox"],
]


def _argparse(words: list[str]) -> dict[str, object] | str:
    """argparse's namespace, or its usage error, for words."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return vars(build_parser().parse_args(words))
    except SystemExit as exit_:
        return f"exit {exit_.code}"


@pytest.mark.parametrize("words", READ_QUICKLY, ids=" ".join)
def test_plain_run_words_read_as_argparse_reads_them(words: list[str]) -> None:
    quick = parse_run(words)
    assert quick is not None, "the common forms must not need argparse"
    assert vars(quick) == _argparse(words)
    assert vars(parse_args(words)) == vars(quick)


@pytest.mark.parametrize("words", DEFERRED, ids=" ".join)
def test_anything_else_is_left_to_argparse(words: list[str]) -> None:
    assert parse_run(words) is None


def test_every_run_option_of_the_parser_is_known_with_its_destination() -> None:
    """An option added to ``nbdock run`` must be added here too (or run falls back for it)."""
    parser = build_parser("run")
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    known = {**_FLAGS, **_VALUES, **_LISTS}
    for action in commands.choices["run"]._actions:
        for spelling in action.option_strings:
            if spelling != "--help":
                assert known.get(spelling) == action.dest, spelling


def test_run_reads_without_importing_argparse() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from nbdock.cli.main import parse_args; "
        "parse_args(['run', '--rm', '-e', 'A=1', 'busybox', 'true']); "
        "print(sorted(m for m in ('argparse', 'gettext', 'locale', 'shutil') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
