"""``docker run``'s options for ``%container_run``, declared once for IPython's ``magic_arguments``.

The option names and meanings follow ``docker run`` (and ``nbdock run``), so a command copied from
a terminal works in a cell. Values are parsed by the client (``32m``, ``/h:/c:ro``), which raises
``InvalidArgument`` for bad ones; the magic turns that into a ``UsageError``.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from nbdock.client.options import run_kwargs

_RUN_ARGUMENTS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-d", "--detach"), dict(action="store_true",
                              help="run in the background and show a live status widget")),
    (("--rm",), dict(action="store_true", help="remove the container when it exits")),
    (("--name",), dict(default=None, help="a name for the container")),
    (("-e", "--env"), dict(action="append", default=[], metavar="KEY=VALUE",
                           help="set an environment variable (repeatable)")),
    (("-w", "--workdir"), dict(default=None, help="working directory inside the container")),
    (("-u", "--user"), dict(default=None, help="user[:group] to run as")),
    (("-v", "--volume"), dict(action="append", default=[], metavar="HOST:CTR[:ro]",
                              help="bind-mount a host path (repeatable)")),
    (("--tmpfs",), dict(action="append", default=[], metavar="PATH[:OPTS]",
                        help="mount a tmpfs (repeatable)")),
    (("--read-only",), dict(action="store_true", help="mount the root filesystem read-only")),
    (("-m", "--memory"), dict(default=None, help="memory limit, e.g. 64m")),
    (("--cpus",), dict(default=None, help="CPU limit, e.g. 0.5")),
    (("--pids-limit",), dict(type=int, default=None, help="limit the number of processes")),
    (("--network",), dict(default=None, help="none (default) or host")),
    (("--hostname",), dict(default=None, help="the container's hostname")),
    (("--entrypoint",), dict(default=None, help="override the image's entrypoint")),
    (("-l", "--label"), dict(action="append", default=[], metavar="KEY=VALUE",
                             help="set a label (repeatable)")),
    (("--mount-cwd",), dict(action="store_true",
                            help="mount the notebook's directory at the same path and work there")),
    (("--lang",), dict(default="python", choices=("python", "sh"),
                       help="cell mode: run the cell as python (default; the image needs python3) "
                            "or sh")),
    (("--in",), dict(dest="inputs", nargs="+", action="extend", default=[], metavar="NAME",
                     help="cell mode: pass these notebook variables in (python: as pickles; sh: as "
                          "environment variables and files in $NBDOCK_IN)")),
    (("--out",), dict(dest="outputs", nargs="+", action="extend", default=[], metavar="NAME",
                      help="cell mode: bring these variables back (python: JSON-able values; sh: "
                           "files written to $NBDOCK_OUT/NAME, as strings)")),
    (("--pickle-out",), dict(action="store_true",
                             help="cell mode, python: accept non-JSON --out values as pickles (only "
                                  "for code you trust: unpickling runs code the container chose)")),
    (("image",), dict(nargs="?", default=None, help="the image to run")),
    (("command",), dict(nargs=argparse.REMAINDER,
                        help="line mode: the command and its arguments; cell mode: script arguments")),
]


def run_arguments(func: Callable[..., Any]) -> Callable[..., Any]:
    """Apply every ``docker run`` option, in help order (decorators apply bottom-up)."""
    for flags, options in reversed(_RUN_ARGUMENTS):
        func = argument(*flags, **options)(func)
    return func


def parse(magic: Any, line: str) -> argparse.Namespace:
    """Split like a POSIX shell, so ``sh -c 'echo $HOME'`` reaches the container intact.

    (IPython's own splitter keeps the quotes in the words, which a shell command cannot survive.)
    """
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"cannot split the command line: {error}") from None
    args = magic.parser.parse_args(words)
    if args.image is None:
        _take_image_from_names(args, words)
    return args


def _take_image_from_names(args: argparse.Namespace, words: list[str]) -> None:
    """``--in a b busybox``: the greedy ``NAME...`` list swallowed the image; it is its last word.

    So ``%%container_run --in df --out result busybox`` reads as written. To pass script arguments
    after such a list, end it with ``--``: ``--in df -- IMAGE ARG...``.
    """
    last = max((i for i, w in enumerate(words) if w in ("--in", "--out")), default=-1)
    names = None
    if last >= 0:
        names = args.inputs if words[last] == "--in" else args.outputs
    if not names or len(names) < 2:
        raise UsageError("an IMAGE is required, e.g. %container_run busybox echo hi")
    args.image = names.pop()


def create_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments ``client.containers.create``/``run`` take (``--mount-cwd`` added)."""
    options = run_kwargs(args)
    if args.mount_cwd:
        cwd = os.getcwd()
        options["volumes"].append(f"{cwd}:{cwd}")
        options["working_dir"] = options["working_dir"] or cwd
    return options
