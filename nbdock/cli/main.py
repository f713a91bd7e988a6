"""``nbdock``: the command line, shaped like ``docker``'s, over the Python client.

The parser lives in ``parser.py`` (``quickparse.py`` reads a plain ``nbdock run`` without
argparse); handlers live in ``containers.py``, ``images.py`` and ``build.py``. Every
``NbdockError`` becomes one ``nbdock: message`` line on stderr and Docker's exit codes (125 for
run's own errors), never a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nbdock.errors import NbdockError

if TYPE_CHECKING:
    import argparse

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


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named by ``argv``, when it is the first word (else: build every parser)."""
    if argv and argv[0] in _HANDLERS:
        return argv[0]
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) just that subcommand's (see ``parser.build_parser``)."""
    from nbdock.cli.parser import build_parser as build

    return build(only)


def parse_args(words: Sequence[str]) -> Any:
    """The namespace for ``words``: ``quickparse`` when it can read them, else argparse (which
    also prints help and usage errors, and exits for them)."""
    from nbdock.cli.quickparse import parse_run

    args = parse_run(words)
    if args is None:
        args = build_parser(_chosen(words)).parse_args(words)
    return args


def handler_for(args: Any) -> Callable[[Any], int]:
    """The handler of ``args.cmd``, its module imported now (the client, engine and runtime
    come with it: the bulk of a start's imports)."""
    import importlib

    module_name, function = _HANDLERS[args.cmd]
    return getattr(importlib.import_module(f"nbdock.cli.{module_name}"), function)


def call(handler: Callable[[Any], int], args: Any) -> int:
    """Run the handler; errors become one line and Docker's exit codes."""
    try:
        return int(handler(args))
    except NbdockError as error:
        print(f"nbdock: {error}", file=sys.stderr)
        return 125 if args.cmd in ("run", "create", "start", "exec") else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    return call(handler_for(args), args)


def imports_done() -> None:
    """After the imports of a one-shot process: its ~20,000 objects live until exit, so the
    collector should never scan them (``freeze``); it runs again for what the command makes."""
    gc.freeze()
    gc.enable()


def entry() -> None:
    """Console-script entry: skip the interpreter's slow teardown (~15 ms) once output is out.

    Everything the CLI writes is flushed and every file it changed was replaced atomically, so
    there is nothing left for a normal shutdown to do but free memory. One start per process
    gains nothing from the runtime's fork server (and its warm pool): never start one here.
    The cyclic collector pauses during the imports: they only add objects that live as long as
    the process, and collecting as they come costs ~3 ms (30-odd collections) of every start.
    """
    gc.disable()
    os.environ.setdefault("NBDOCK_FORKSERVER", "never")
    args = parse_args(sys.argv[1:])
    handler = handler_for(args)
    imports_done()
    code = call(handler, args)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
