"""The magics: ``%%dockerfile``, ``%container_run``/``%%container_run``, ``%containers``, ``%images``.

Thin on purpose: parse options (``magic_arguments``, so ``%container_run?`` shows them), call the
client, hand the result to a renderer. Shell syntax in a magic line belongs to the container, so
these magics turn off IPython's ``$var``/``{expr}`` expansion; values move in and out of a cell
with ``--in``/``--out`` instead.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
import weakref
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from nbdock.client import Client, from_env
from nbdock.notebook import _options
from nbdock.notebook._build import run_build
from nbdock.notebook._display import exit_badge, publish
from nbdock.notebook._errors import user_facing_errors
from nbdock.notebook._script import CellScript, check_names
from nbdock.notebook._stream import stream_run
from nbdock.notebook.status import ContainerStatus
from nbdock.notebook.tables import containers_table, images_table, matches

# ``NBDOCK_PREWARM=0``: do not open the engine and pre-warm a container at ``%load_ext nbdock``.
PREWARM_ENV = "NBDOCK_PREWARM"


@magics_class
class NbdockMagics(Magics):
    """One client per kernel, created on first use (``$NBDOCK_ROOT`` decides where state lives)."""

    def __init__(self, shell: Any, client: Client | None = None) -> None:
        super().__init__(shell)
        self._client = client
        self._client_lock = threading.Lock()
        self._status_widgets: weakref.WeakSet[ContainerStatus] = weakref.WeakSet()
        self._detached_scripts: list[CellScript] = []
        atexit.register(self.release)
        if client is None and os.environ.get(PREWARM_ENV, "1") != "0":
            threading.Thread(target=self._warm_up, name="nbdock-prewarm", daemon=True).start()

    @property
    def client(self) -> Client:
        with self._client_lock:  # the warm-up thread may be making it right now
            if self._client is None:
                with user_facing_errors():
                    self._client = from_env()
            return self._client

    def _warm_up(self) -> None:
        """While the user writes the first cell: open the engine, start its fork server and get a
        pre-warmed container ready, so the first container start costs what later ones do."""
        try:
            self.client.engine.prewarm()
        except Exception:  # noqa: BLE001 - only a head start; the first real start reports errors
            pass

    def release(self) -> None:
        """Stop widget threads, drop detached scripts' files and the client's helper process
        (extension unload, kernel exit)."""
        for status in list(self._status_widgets):
            status.unwatch(timeout=0)
        for script in self._detached_scripts:
            script.cleanup()
        self._detached_scripts.clear()
        if self._client is not None:  # its fork server and pre-warmed containers; containers stay
            self._client.close()

    # ------------------------------------------------------------------ %container_run
    @no_var_expand
    @magic_arguments()
    @_options.run_arguments
    @line_cell_magic
    def container_run(self, line: str, cell: str | None = None) -> None:
        """Run a container, like ``docker run``; output streams into the cell as it comes.

        Line mode runs IMAGE [COMMAND...]; cell mode (``%%container_run [options] IMAGE``) runs the
        cell body as a script inside the container (``--lang python|sh``), with ``--in NAME...``
        and ``--out NAME...`` to move values between the notebook and the container. ``-d`` starts
        it in the background with a live status widget (Stop and Remove buttons). The exit code is
        shown after the output (red when non-zero) and stored in ``_exit_code``.
        """
        args = _options.parse(self.container_run, line)
        script = self._script(args, cell)
        try:
            with user_facing_errors():
                options = _options.create_options(args)
                command: list[str] | None = list(args.command) or None
                if script is not None:
                    command, env, volumes = script.prepare(list(args.command))
                    options["environment"] = [*env, *options["environment"]]
                    options["volumes"] = [*options["volumes"], *volumes]
                    options["entrypoint"] = ""
                if args.detach:
                    self._run_detached(args, command, options, script)
                else:
                    self._run_attached(args, command, options, script)
        finally:
            # a detached script's files must outlive the cell; every other run's go now
            if script is not None and script not in self._detached_scripts:
                script.cleanup()

    def _script(self, args: argparse.Namespace, cell: str | None) -> CellScript | None:
        if cell is None:
            used = [flag for flag, value in (("--in", args.inputs), ("--out", args.outputs),
                                             ("--pickle-out", args.pickle_out)) if value]
            if used:
                raise UsageError(f"{', '.join(used)} need cell mode: %%container_run")
            return None
        if args.entrypoint:
            raise UsageError("--entrypoint does not apply to %%container_run (the cell is the program)")
        if args.detach and args.outputs:
            raise UsageError("--out cannot come back from a detached (-d) container")
        names = check_names(args.inputs, "--in")
        check_names(args.outputs, "--out")
        missing = [name for name in names if name not in self.shell.user_ns]
        if missing:
            raise UsageError(f"--in: not defined in the notebook: {', '.join(missing)}")
        inputs = {name: self.shell.user_ns[name] for name in names}
        return CellScript(args.lang, cell, inputs, list(args.outputs), args.pickle_out)

    def _run_attached(self, args: argparse.Namespace, command: list[str] | None,
                      options: dict[str, Any], script: CellScript | None) -> None:
        # --rm: the supervisor removes it after the last output, off the cell's path.
        attached = self.client.containers.run_attached(
            args.image, command, auto_remove=args.rm, **options
        )
        try:
            outcome = stream_run(self.client, attached)
        finally:
            if args.rm:
                self.client.containers.discard(attached.container_id)
        self.shell.user_ns["_exit_code"] = outcome.exit_code
        error = outcome.error
        if script is not None and script.lang == "python" and outcome.exit_code == 127:
            error += " (this image has no python3: use --lang sh, or an image with Python)"
        exit_badge(outcome.exit_code, error, outcome.interrupted, outcome.oom_killed,
                   outcome.seconds)
        if script is not None:
            self._collect(script, outcome.exit_code)

    def _collect(self, script: CellScript, exit_code: int | None) -> None:
        if not script.outputs:
            return
        if exit_code != 0:
            print(f"--out {' '.join(script.outputs)}: not set, the script failed", file=sys.stderr)
            return
        values, problems = script.collect()
        self.shell.user_ns.update(values)
        if problems:
            raise UsageError("\n".join(problems))

    def _run_detached(self, args: argparse.Namespace, command: list[str] | None,
                      options: dict[str, Any], script: CellScript | None) -> None:
        container = self.client.containers.run(
            args.image, command, detach=True, remove=args.rm, **options
        )
        if script is not None:
            self._detached_scripts.append(script)  # its files live as long as the kernel
        status = ContainerStatus(container)
        self._status_widgets.add(status)
        display(status)
        status.watch()

    # ------------------------------------------------------------------ %%dockerfile
    @magic_arguments()
    @argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]",
              help="name the image (repeatable)")
    @argument("--context", default=None, metavar="DIR",
              help="the build context (default: the notebook's directory)")
    @argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
              help="set a build argument (repeatable)")
    @argument("--target", default=None, help="build up to this stage")
    @argument("--no-cache", action="store_true", help="do not use the build cache")
    @argument("--name", default=None, metavar="VAR",
              help="store the built image in this notebook variable")
    @argument("--progress", default="auto", choices=("auto", "widget", "plain"),
              help="live view: a widget (default in a kernel) or plain lines")
    @cell_magic
    def dockerfile(self, line: str, cell: str) -> None:
        """Build an image from the cell, a Dockerfile, like ``docker build``.

        Each step shows as it starts, RUN output streams, cache hits are marked at once; then a
        layer stack lists every step (cached or built and why, time, size). A failed build shows
        the failing line, its exit code and output, and the steps that stay cached. Unlike
        ``%container_run``, the options line expands notebook variables: ``--context {path}``.
        """
        args = parse_argstring(self.dockerfile, line)
        with user_facing_errors():
            run_build(self.shell, self.client, args, cell)

    # ------------------------------------------------------------------ tables
    @magic_arguments()
    @argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    @argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
              help="name=, status=, ancestor=, label=KEY[=VALUE], id= (repeatable)")
    @line_magic
    def containers(self, line: str) -> None:
        """List containers, like ``docker ps``; also refreshes every live status widget."""
        args = parse_argstring(self.containers, line)
        for item in args.filter:
            if item.partition("=")[0] not in ("name", "status", "ancestor", "label", "id"):
                raise UsageError(f"--filter {item!r}: use name=, status=, ancestor=, label= or id=")
        with user_facing_errors():
            chosen = [c for c in self.client.containers.list(all=args.all) if matches(c, args.filter)]
            html_text, plain = containers_table(chosen)
            self.refresh_widgets()
        publish(html_text, plain)

    @magic_arguments()
    @argument("repository", nargs="?", default=None, help="only this REPOSITORY[:TAG]")
    @line_magic
    def images(self, line: str) -> None:
        """List images, like ``docker images``; also refreshes every live status widget."""
        args = parse_argstring(self.images, line)
        with user_facing_errors():
            html_text, plain = images_table(self.client.images.list(), args.repository)
            self.refresh_widgets()
        publish(html_text, plain)

    def refresh_widgets(self) -> None:
        """Bring every status widget this kernel shows up to date (a container may have been
        stopped or removed elsewhere: the CLI, another notebook)."""
        for status in list(self._status_widgets):
            status.refresh()
