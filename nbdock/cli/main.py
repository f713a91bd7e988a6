"""``nbdock``: the command line, shaped like ``docker``'s, over the Python client.

The parser lives here; handlers live in ``containers.py`` and ``images.py``. Every ``NbdockError``
becomes one ``nbdock: message`` line on stderr and Docker's exit codes (125 for run's own errors),
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from nbdock.errors import NbdockError


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
_BUILD_COMMANDS = ("build", "history")

# Subcommand -> the module of its handler (imported only when that command runs) and its name.
_HANDLERS: dict[str, tuple[str, str]] = {
    "run": ("containers", "run"), "create": ("containers", "create"),
    "start": ("containers", "start"), "ps": ("containers", "ps"), "logs": ("containers", "logs"),
    "stop": ("containers", "stop"), "kill": ("containers", "kill"), "rm": ("containers", "rm"),
    "wait": ("containers", "wait"), "exec": ("containers", "exec_"),
    "inspect": ("containers", "inspect"), "images": ("images", "images"),
    "rmi": ("images", "rmi"), "import": ("images", "import_"), "tag": ("images", "tag"),
    "bootstrap": ("images", "bootstrap"), "demo": ("demo", "run"),
    "build": ("build", "build"), "history": ("build", "history"),
}


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


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named by ``argv``, when it is the first word (else: build every parser)."""
    if argv and argv[0] in _HANDLERS:
        return argv[0]
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) just that subcommand's: a ``run`` needs no other, and
    building all of them costs a few ms on every start. Help and errors read the same."""
    parser = argparse.ArgumentParser(prog="nbdock", description="A container engine for Jupyter.")
    parser.add_argument("--version", action="version", version="nbdock 0.1.0")
    commands = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    for name, (help_text, aliases) in _COMMANDS.items():
        if only is None or only == name:
            sub = commands.add_parser(name, help=help_text, aliases=list(aliases),
                                      add_help=name not in ("run", "create"))
            _define(name, sub)
    if only is None or only in _BUILD_COMMANDS:
        from nbdock.cli.build import add_build_parser

        add_build_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen(words))
    args = parser.parse_args(words)
    module_name, function = _HANDLERS[args.cmd]
    import importlib

    handler = getattr(importlib.import_module(f"nbdock.cli.{module_name}"), function)
    try:
        return int(handler(args))
    except NbdockError as error:
        print(f"nbdock: {error}", file=sys.stderr)
        return 125 if args.cmd in ("run", "create", "start", "exec") else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    """Console-script entry: skip the interpreter's slow teardown (~15 ms) once output is out.

    Everything the CLI writes is flushed and every file it changed was replaced atomically, so
    there is nothing left for a normal shutdown to do but free memory.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
