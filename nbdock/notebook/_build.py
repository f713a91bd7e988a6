"""``%%dockerfile``: build the cell, live, and show the layer stack (or what failed, and where).

The cell is the Dockerfile; the context is the notebook's directory unless ``--context`` says
otherwise. Progress shows as a widget when a kernel (and so, possibly, a widget frontend) is
there, as BuildKit-style plain lines otherwise (``--progress`` chooses). The lasting output is
the layer stack, whose ``text/plain`` is stable across runs; a failed build instead shows the
Dockerfile with the failing line marked, the exit code and output, and the steps that stay cached.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.display import display

from nbdock.client import Client, Image
from nbdock.errors import BuildError, DockerfileError
from nbdock.notebook._display import GREY, RED, error_lines, esc, publish
from nbdock.notebook.build_progress import BuildProgress, PlainProgress
from nbdock.notebook.layer_stack import LayerStack, is_cached, steps_from_events, with_layer_files


def build_arguments(items: Sequence[str]) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"--build-arg {item!r}: use KEY=VALUE")
        if not sep:  # docker build: a bare KEY takes the caller's value, if it has one
            if key not in os.environ:
                continue
            value = os.environ[key]
        result[key] = value
    return result


def run_build(shell: Any, client: Client, args: argparse.Namespace, dockerfile: str) -> Image:
    """Build, render, and return the image (also stored as ``--name VAR``)."""
    context = args.context or os.getcwd()
    if not os.path.isdir(context):
        raise UsageError(f"--context {context!r}: not a directory")
    if not dockerfile.strip():
        raise UsageError("the cell is empty: write the Dockerfile in it, starting with FROM")
    if args.name and not args.name.isidentifier():
        raise UsageError(f"--name {args.name!r}: not a valid variable name")
    title = ", ".join(args.tag) or "(untagged)"
    live = args.progress == "widget" or (
        args.progress == "auto" and getattr(shell, "kernel", None) is not None)
    progress = BuildProgress(title) if live else None
    plain = None if live else PlainProgress(_write)
    events: list[dict[str, Any]] = []

    def on_event(event: Any) -> None:
        data = event.to_json() if hasattr(event, "to_json") else dict(event)
        events.append(data)
        (progress or plain).on_event(data)  # type: ignore[union-attr]

    if progress is not None:
        display(progress)
    try:
        image, _ = client.images.build(
            path=context, fileobj=io.StringIO(dockerfile), tag=list(args.tag) or None,
            buildargs=build_arguments(args.build_arg), target=args.target,
            nocache=args.no_cache, progress=on_event,
        )
    except (BuildError, DockerfileError) as error:
        if progress is not None:
            progress.finish(ok=False)
        show_failure(dockerfile, error, steps_from_events(events))
        # the failure view above has the details: the error itself needs one line
        error._render_traceback_ = (  # type: ignore[union-attr]
            lambda shown=error: error_lines(shown, first_only=True))
        raise
    if progress is not None:
        progress.finish(ok=True)
    size = image.attrs.get("Size")
    steps = with_layer_files(steps_from_events(events), image.layer_changes())
    display(LayerStack(steps, title=f"image {', '.join(image.tags) or image.short_id}",
                       image_size=int(size) if size is not None else None))
    if args.name:
        shell.user_ns[args.name] = image
    return image


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def show_failure(dockerfile: str, error: BuildError | DockerfileError,
                 steps: Sequence[Mapping[str, Any]]) -> None:
    """The Dockerfile with the failing line marked, the exit code and output, what stays cached."""
    line = error.line
    exit_code = getattr(error, "exit_code", None)
    failed = next((s for s in steps if s.get("status") == "failed"), None)
    output = str(failed.get("output") or "") if failed else ""
    if not output and isinstance(error, BuildError):
        output = "\n".join(error.build_log[-20:])
    kept = [s for s in steps if is_cached(s) or s.get("status") == "done"]

    listing = []
    for number, text in enumerate(dockerfile.splitlines(), start=1):
        style = f"background:{RED};color:#fff" if number == line else ""
        css = "nbdock-failed-line" if number == line else ""
        listing.append(f'<div class="{css}" style="{style}"><span style="color:{GREY}">{number:>3}</span>'
                       f"  {esc(text)}</div>")
    parts = [f'<div class="nbdock-build-failure"><b style="color:{RED}">build failed</b>'
             f" — {esc(str(error).splitlines()[0])}</div>",
             f'<pre style="margin:0.3em 0">{"".join(listing)}</pre>']
    if exit_code is not None:
        parts.append(f"<div>exit code <b>{exit_code}</b></div>")
    if output:
        parts.append(f"<pre style=\"max-height:16em;overflow:auto\">{esc(output[-6000:])}</pre>")
    if kept:
        names = ", ".join(f"#{s['step']} {s['instruction']}" for s in kept)
        parts.append(f'<div style="color:{GREY}">kept in the cache: {esc(names)}</div>')

    text = [f"build failed at line {line}: {_line_text(dockerfile, line)}" if line else "build failed"]
    if exit_code is not None:
        text.append(f"exit code {exit_code}")
    text.extend(f"  {row}" for row in output.rstrip("\n").splitlines()[-20:])
    text.extend(f"kept: #{s['step']} {s['instruction']}" for s in kept)
    publish("".join(parts), "\n".join(text))


def _line_text(dockerfile: str, line: int | None) -> str:
    lines = dockerfile.splitlines()
    return lines[line - 1].strip() if line and 0 < line <= len(lines) else ""
