"""The ``nbdock`` argument parser (argparse): every subcommand, its options and their help.

``nbdock run`` with plain arguments does not come here (``quickparse``: argparse's import and
setup cost ~4 ms of every start); this parser stays the reference for what the words mean.
"""

from __future__ import annotations

import argparse
import os
import sys


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--rm", action="store_true", help="remove the container when it exits")
    add("-d", "--detach", action="store_true", help="run in the background, print the id")
    add("--name", default="", help="name the container")
    add("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment var")
    add("-w", "--workdir", default="", help="working directory inside the container")
    add("-u", "--user", default=None, help="USER[:GROUP] (names from the image's /etc/passwd)")
    add("--hostname", "-h", default="", help="container hostname (default: short id)")
    add("--entrypoint", default=None, help="override the image's ENTRYPOINT ('' clears it)")
    add("-v", "--volume", action="append", default=[], metavar="HOST:CTR[:ro]", help="bind mount")
    add("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]", help="mount a tmpfs")
    add("--read-only", action="store_true", help="mount the root filesystem read-only")
    add("-m", "--memory", default=None, help="memory limit, e.g. 32m (no swap beyond it)")
    add("--cpus", default=None, help="number of CPUs, e.g. 0.5")
    add("--pids-limit", type=int, default=None, help="maximum number of processes")
    add("--network", "--net", default="none", choices=("none", "host"), help="network mode")
    add("--label", "-l", action="append", default=[], metavar="K=V", help="set a label")
    add("image", help="image reference, e.g. busybox or debian:bookworm")
    add("command", nargs=argparse.REMAINDER, help="command and arguments")


# Subcommand -> (help, aliases). ``build`` and ``history`` are defined in ``cli/build.py``.
_COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "run": ("create and start a container", ()),
    "create": ("create a container without starting it", ()),
    "start": ("start a created or exited container", ()),
    "ps": ("list containers", ()),
    "logs": ("show a container's output", ()),
    "stop": ("stop containers (stop signal, then SIGKILL)", ()),
    "kill": ("send a signal to containers", ()),
    "rm": ("remove containers", ()),
    "wait": ("wait for containers to exit, print exit codes", ()),
    "exec": ("run a command in a running container", ()),
    "inspect": ("show low-level JSON of containers or images", ()),
    "images": ("list images", ()),
    "rmi": ("remove images", ()),
    "import": ("make a one-layer image from a rootfs tarball ('-' reads stdin)", ()),
    "tag": ("add a name to an image", ()),
    "bootstrap": ("make a local base image: busybox or debian (no registry)", ()),
    "demo": ("a guided tour: local base image, isolation, detached containers, limits", ()),
}
BUILD_COMMANDS = ("build", "history")

def _define(name: str, parser: argparse.ArgumentParser) -> None:
    """The arguments of one subcommand (``--help`` of run/create is long-only: -h is hostname)."""
    add = parser.add_argument
    if name in ("run", "create"):
        add("--help", action="help", help="show this help message and exit")
        _add_run_options(parser)
    elif name == "start":
        add("-a", "--attach", action="store_true", help="stream its output")
        add("containers", nargs="+")
    elif name == "ps":
        add("-a", "--all", action="store_true", help="include stopped containers")
        add("-q", "--quiet", action="store_true", help="only ids")
    elif name == "logs":
        add("-f", "--follow", action="store_true")
        add("-t", "--timestamps", action="store_true")
        add("container")
    elif name == "stop":
        add("-t", "--time", type=float, default=10.0, help="seconds before SIGKILL")
        add("containers", nargs="+")
    elif name == "kill":
        add("-s", "--signal", default="KILL")
        add("containers", nargs="+")
    elif name == "rm":
        add("-f", "--force", action="store_true", help="kill a running one first")
        add("containers", nargs="+")
    elif name == "wait":
        add("containers", nargs="+")
    elif name == "exec":
        add("-e", "--env", action="append", default=[])
        add("-w", "--workdir", default="")
        add("-u", "--user", default=None)
        add("container")
        add("command", nargs=argparse.REMAINDER)
    elif name == "inspect":
        add("--type", choices=("container", "image"), default=None)
        add("objects", nargs="+")
    elif name == "images":
        add("-q", "--quiet", action="store_true")
    elif name == "rmi":
        add("-f", "--force", action="store_true")
        add("images", nargs="+")
    elif name == "import":
        add("-c", "--change", action="append", default=[],
            help="Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER")
        add("tarball")
        add("reference", nargs="?")
    elif name == "tag":
        add("source")
        add("target")
    elif name == "bootstrap":
        add("kind", choices=("busybox", "debian"))
        add("--suite", default=None, help="Debian suite (default: the host's)")


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` without importing ``shutil`` (and bz2, lzma,
    fnmatch with it: ~2 ms): argparse builds a formatter for every ``add_argument``."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's own formatter, given the width argparse would compute itself."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) just that subcommand's: a ``run`` needs no other, and
    building all of them costs a few ms on every start. Help and errors read the same."""
    parser = argparse.ArgumentParser(prog="nbdock", description="A container engine for Jupyter.",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version="nbdock 0.1.0")
    commands = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    for name, (help_text, aliases) in _COMMANDS.items():
        if only is None or only == name:
            sub = commands.add_parser(name, help=help_text, aliases=list(aliases),
                                      add_help=name not in ("run", "create"),
                                      formatter_class=_HelpFormatter)
            _define(name, sub)
    if only is None or only in BUILD_COMMANDS:
        from nbdock.cli.build import add_build_parser

        add_build_parser(commands)
    return parser
