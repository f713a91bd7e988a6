"""Live build progress: each step appears as it starts, RUN output streams into it, CACHED at once.

``BuildProgress`` is the widget view (one HTML row per step; the output of a running step sits in
an open ``<details>``, which closes when the step succeeds); ``PlainProgress`` prints BuildKit's
``--progress plain`` lines for places with no widget frontend (terminal IPython). Both consume
the builder's JSON events (``event.to_json()``), so they never depend on the builder's classes.
Events may arrive on any thread: the widget only sets traits, under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from nbdock.notebook._display import AMBER, GREEN, GREY, RED, badge, esc
from nbdock.notebook.layer_stack import fold_event, result_text

_OUTPUT_TAIL = 6000  # characters of a step's output kept in the live view
_REDRAW = 0.25  # seconds between redraws of a step while its output streams


class BuildProgress(widgets.VBox):
    """The build as it happens; ``state`` is ``building``, ``done`` or ``failed``."""

    state = Unicode("building")

    def __init__(self, title: str = "") -> None:
        self.title = title
        self.events: list[dict[str, Any]] = []
        self._steps: dict[int, dict[str, Any]] = {}
        self._rows: dict[int, widgets.HTML] = {}
        self._drawn: dict[int, float] = {}
        self._pending: dict[int, threading.Timer] = {}
        self._lock = threading.Lock()
        self._heading = widgets.HTML(self._heading_html())
        super().__init__(children=[self._heading])
        self.add_class("nbdock-build-progress")
        self.observe(lambda _change: setattr(self._heading, "value", self._heading_html()), "state")

    def on_event(self, event: Mapping[str, Any]) -> None:
        """Take one builder event (JSON form) and redraw the step it concerns.

        Output chunks redraw their row at most every ``_REDRAW`` seconds (a chatty RUN would
        otherwise send a comm message per chunk); any other event redraws at once.
        """
        with self._lock:
            self.events.append(dict(event))
            step = fold_event(self._steps, event)
            if step is None:
                return
            step_id = int(step["step"])
            row = self._rows.get(step_id)
            if row is None:
                row = widgets.HTML()
                row.add_class("nbdock-build-step")
                self._rows[step_id] = row
                self.children = (*self.children, row)
            now = time.monotonic()
            if event.get("type") == "step-output" and now - self._drawn.get(step_id, 0.0) < _REDRAW:
                self._redraw_later(step_id)
                return
            self._drawn[step_id] = now
            row.value = step_html(step)

    def _redraw_later(self, step_id: int) -> None:
        """A skipped redraw still happens, ``_REDRAW`` seconds on: a step that prints and then
        goes quiet must show what it printed while it works."""
        if step_id in self._pending:
            return
        timer = threading.Timer(_REDRAW, self._redraw, args=(step_id,))
        timer.daemon = True
        self._pending[step_id] = timer
        timer.start()

    def _redraw(self, step_id: int) -> None:
        with self._lock:
            self._pending.pop(step_id, None)
            self._drawn[step_id] = time.monotonic()
            self._rows[step_id].value = step_html(self._steps[step_id])

    def finish(self, ok: bool) -> None:
        """Draw every row's final state (throttled output included), then the verdict; a
        successful build's progress then hides, a failed one stays with its output open."""
        with self._lock:
            for timer in self._pending.values():
                timer.cancel()
            self._pending.clear()
            for step_id, row in self._rows.items():
                row.value = step_html(self._steps[step_id])
        self.state = "done" if ok else "failed"
        if ok:  # the layer stack shown next says it all, RUN output included
            self.layout.display = "none"

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self._steps.values())

    def _heading_html(self) -> str:
        colour = {"building": AMBER, "done": GREEN, "failed": RED}[self.state]
        return (f'<div class="nbdock-build-heading">{badge(self.state, colour, "nbdock-build-state")}'
                f" <b>{esc(self.title)}</b></div>")

    def text(self) -> str:
        """Stable: the final summary is the layer stack shown after the build."""
        return f"build {self.title}".rstrip()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = self.text()
        return bundle


def step_html(step: Mapping[str, Any]) -> str:
    result = result_text(step)
    word = result.partition(" (")[0]
    colour = {"CACHED": GREEN, "FAILED": RED, "done": GREY, "running": AMBER}.get(word, AMBER)
    seconds = f" {float(step['seconds']):.1f}s" if step.get("seconds") is not None else ""
    reason = f' <span style="color:{GREY}">{esc(step["reason"])}</span>' if step.get("reason") else ""
    where = f"[{step['index']}/{step['total']}] " if step.get("index") else ""
    html_text = (
        f'<div><span style="color:{GREY}">#{esc(step["step"])}</span> {esc(where)}'
        f'<code>{esc(step.get("instruction", ""))}</code> '
        f'{badge(word, colour, "nbdock-build-" + word.lower())}'
        f'<span style="color:{GREY}">{esc(seconds)}</span>{reason}</div>'
    )
    output = str(step.get("output") or "")
    if output:
        is_open = " open" if step.get("status") in ("running", "failed") else ""
        lines = output.count("\n")
        html_text += (
            f'<details{is_open} style="margin-left:2em">'
            f'<summary>output ({lines} line{"" if lines == 1 else "s"})</summary>'
            f'<pre style="margin:0;max-height:16em;overflow:auto">{esc(output[-_OUTPUT_TAIL:])}</pre>'
            "</details>"
        )
    return html_text


class PlainProgress:
    """BuildKit's plain progress lines: ``#3 [2/3] RUN make``, ``#3 CACHED``, ``#3 DONE 1.2s``."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self._partial: dict[int, str] = {}

    def on_event(self, event: Mapping[str, Any]) -> None:
        kind, step = event.get("type"), event.get("id")
        if kind == "step-started":
            self.write(f"#{step} [{event.get('index')}/{event.get('total')}] {event.get('text')}\n")
        elif kind == "step-cache-miss":
            self.write(f"#{step} {event.get('reason')}\n")
        elif kind == "step-output":
            text = self._partial.pop(int(step), "") + str(event.get("text", ""))
            *lines, rest = text.split("\n")
            if rest:
                self._partial[int(step)] = rest
            for line in lines:
                self.write(f"#{step} {line}\n")
        elif kind == "step-finished":
            if int(step) in self._partial:
                self.write(f"#{step} {self._partial.pop(int(step))}\n")
            status = event.get("status")
            if status == "cached":
                self.write(f"#{step} CACHED\n")
            elif status == "failed":
                error = str(event.get("error") or "").splitlines()
                self.write(f"#{step} ERROR: {error[0] if error else 'failed'}\n")
            else:
                self.write(f"#{step} DONE {float(event.get('seconds') or 0):.1f}s\n")
