"""The layer stack: one row per build step, expandable to the files its layer added/changed/removed.

It renders from plain step dicts (``steps_from_events`` folds the builder's JSON events into
them, so a stored event stream renders exactly as a live build did). Keys it reads, all optional
but ``instruction``::

    step (the build-wide step number), instruction, line (1-based line in the Dockerfile),
    status ("cached" | "done" | "failed"), reason (why it was rebuilt), seconds,
    size (layer bytes; None for steps that made no layer), error,
    added / changed (paths, or {"path": ..., "size": ...}), removed (paths)

Totals: the image size (sum of layer sizes) and the bytes wasted by files a later layer changes
or removes (they still ship in the earlier layer), as ``dive`` reports them. The builder's events
do not list a layer's files yet; rows then say so when expanded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from traitlets import Dict, Int, List, Unicode, observe

from nbdock.notebook._display import AMBER, GREEN, GREY, RED, badge, esc, human_size, text_table


def _entries(items: Iterable[Any]) -> list[tuple[str, int]]:
    result = []
    for item in items or ():
        if isinstance(item, Mapping):
            result.append((str(item.get("path", "")), int(item.get("size") or 0)))
        else:
            result.append((str(item), 0))
    return result


def _covers(removed: str, path: str) -> bool:
    return path == removed or path.startswith(removed.rstrip("/") + "/")


def wasted_bytes(steps: Sequence[Mapping[str, Any]]) -> int:
    """Bytes of files that a later layer overwrites or deletes."""
    wasted = 0
    for index, step in enumerate(steps):
        later = steps[index + 1:]
        for path, size in _entries([*step.get("added", []), *step.get("changed", [])]):
            for other in later:
                touched = {p for p, _ in _entries(other.get("changed", []))}
                touched |= {p for p, _ in _entries(other.get("added", []))}
                if path in touched or any(_covers(r, path) for r, _ in _entries(other.get("removed", []))):
                    wasted += size
                    break
    return wasted


def file_tree(step: Mapping[str, Any]) -> str:
    """Added (+), changed (~) and removed (-) paths as an indented tree, directories first."""
    if not any(key in step for key in ("added", "changed", "removed")):
        return "(this layer's file list is not available)"
    marks: dict[str, tuple[str, int]] = {}
    for mark, key in (("+", "added"), ("~", "changed"), ("-", "removed")):
        for path, size in _entries(step.get(key, [])):
            marks[path.strip("/")] = (mark, size)
    if not marks:
        return "(no file changes)"
    lines = []
    shown: set[str] = set()
    for path in sorted(marks):
        parts = path.split("/")
        for depth in range(len(parts) - 1):
            parent = "/".join(parts[: depth + 1])
            if parent not in shown and parent not in marks:
                shown.add(parent)
                lines.append(f"  {'  ' * depth}{parts[depth]}/")
        mark, size = marks[path]
        sized = f"  {human_size(size)}" if size else ""
        lines.append(f"{mark} {'  ' * (len(parts) - 1)}{parts[-1]}{sized}")
        shown.add(path)
    return "\n".join(lines)


def is_cached(step: Mapping[str, Any]) -> bool:
    return step.get("status") == "cached" or bool(step.get("cached"))


# The builder's cache-miss kinds, as the stable words the plain text uses (the full reason, which
# can name an earlier instruction or changed files, is in the HTML and the widget).
MISS_WORDS = {
    "no-cache": "--no-cache", "parent": "earlier step rebuilt", "instruction": "instruction changed",
    "build-arg": "build arg changed", "files": "files changed", "base": "base image changed",
    "layer-gone": "cached layer gone", "new": "new step", "always": "never cached",
}


def result_text(step: Mapping[str, Any], detailed: bool = True) -> str:
    """``CACHED``, ``built (why)``, ``done`` (a step that made no layer and had nothing to miss),
    ``FAILED`` or ``running``; ``detailed=False`` gives the miss kind instead of the full reason."""
    if is_cached(step):
        return "CACHED"
    status = step.get("status", "done")
    if status == "failed":
        return "FAILED"
    if status == "running":
        return "running"
    why = step.get("reason") if detailed else MISS_WORDS.get(step.get("miss", ""), step.get("reason"))
    return f"built ({why})" if why else "done"


def steps_from_events(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fold the builder's JSON events (``event.to_json()``) into one dict per step, in order."""
    steps: dict[int, dict[str, Any]] = {}
    for event in events:
        fold_event(steps, event)
    return list(steps.values())


def fold_event(steps: dict[int, dict[str, Any]], event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Apply one event to ``steps`` (by step id); returns the step it changed, if any."""
    kind, step_id = event.get("type"), event.get("id")
    if step_id is None:
        return None
    if kind == "step-started":
        steps[int(step_id)] = {
            "step": step_id, "instruction": event.get("text", ""), "line": event.get("line"),
            "stage": event.get("stage", ""), "index": event.get("index"),
            "total": event.get("total"), "status": "running", "output": "",
        }
        return steps[int(step_id)]
    step = steps.get(int(step_id))
    if step is None:
        return None
    if kind == "step-cache-miss":
        step["reason"] = event.get("reason", "")
        step["miss"] = event.get("kind", "")
    elif kind == "step-output":
        step["output"] += str(event.get("text", ""))
    elif kind == "step-finished":
        step.update(status=event.get("status"), seconds=event.get("seconds"),
                    size=event.get("layer_size"), error=event.get("error"), layer=event.get("layer"))
    return step


def with_layer_files(
    steps: Sequence[dict[str, Any]], changes: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Attach each layer's added/changed/removed files to the step that made (or cached) it."""
    by_layer = {str(change["layer"]): change for change in changes}
    for step in steps:
        change = by_layer.get(str(step.get("layer")))
        if change is not None:
            step.update(added=change["added"], changed=change["changed"], removed=change["removed"])
    return list(steps)


def stack_text(steps: Sequence[Mapping[str, Any]], image_size: int | None = None) -> str:
    """Deterministic: no times (they change every build), miss kinds rather than reasons (which
    can quote an earlier build); sizes are sanitized under nbval."""
    rows = [
        [f"#{step.get('step', i + 1)}", str(step.get("instruction", "")),
         str(step.get("line") or ""), result_text(step, detailed=False),
         human_size(step["size"]) if step.get("size") is not None else "-"]
        for i, step in enumerate(steps)
    ]
    table = text_table(["STEP", "INSTRUCTION", "LINE", "RESULT", "SIZE"], rows)
    size = image_size if image_size is not None else sum(int(s.get("size") or 0) for s in steps)
    return f"{table}\nimage size {human_size(size)}, {human_size(wasted_bytes(steps))} wasted"


class LayerStack(widgets.VBox):
    """Rows of steps; ``expanded`` (step indexes) says which rows show their files."""

    steps = List(Dict())
    expanded = List()
    title = Unicode("")
    image_size = Int(None, allow_none=True)  # the whole image, base included, when known

    def __init__(self, steps: Iterable[Mapping[str, Any]] = (), title: str = "",
                 image_size: int | None = None) -> None:
        self._title = widgets.HTML()
        self._totals = widgets.HTML()
        self._rows = widgets.VBox()
        self._toggles: list[widgets.Button] = []
        self._files: list[widgets.HTML] = []
        super().__init__(children=[self._title, self._rows, self._totals])
        self.add_class("nbdock-layer-stack")
        self.title = title
        self.image_size = image_size
        self.steps = [dict(step) for step in steps]

    def add_step(self, step: Mapping[str, Any]) -> None:
        """Append one finished step (the builder's event) and redraw."""
        self.steps = [*self.steps, dict(step)]

    def toggle(self, index: int) -> None:
        self.expanded = ([i for i in self.expanded if i != index] if index in self.expanded
                         else [*self.expanded, index])

    @observe("steps")
    def _render(self, _change: Any = None) -> None:
        """One row per step: a toggle, the summary, and the files (hidden until expanded)."""
        old = self._rows.children
        self._toggles, self._files = [], []
        rows = []
        for index, step in enumerate(self.steps):
            toggle = widgets.Button(layout=widgets.Layout(width="2.2em"),
                                    tooltip="show the files this layer added, changed, removed")
            toggle.add_class("nbdock-layer-toggle")
            toggle.on_click(lambda _b, i=index: self.toggle(i))
            files = widgets.HTML(_details_html(step))
            row = widgets.VBox([widgets.HBox([toggle, widgets.HTML(self._row_html(index, step))]),
                                files])
            row.add_class("nbdock-layer-row")
            self._toggles.append(toggle)
            self._files.append(files)
            rows.append(row)
        self._rows.children = rows
        for widget in old:
            _close_tree(widget)
        size = self.image_size if self.image_size is not None else sum(
            int(step.get("size") or 0) for step in self.steps)
        self._totals.value = (
            f'<div class="nbdock-layer-totals">image size <b>{esc(human_size(size))}</b> · '
            f"{esc(human_size(wasted_bytes(self.steps)))} wasted by overwritten or deleted files</div>"
        )
        self._show_expanded()

    @observe("title")
    def _show_title(self, _change: Any = None) -> None:
        self._title.value = f'<div class="nbdock-layer-title"><b>{esc(self.title)}</b></div>'

    @observe("expanded")
    def _show_expanded(self, _change: Any = None) -> None:
        for index, (toggle, files) in enumerate(zip(self._toggles, self._files, strict=True)):
            is_open = index in self.expanded
            toggle.description = "▾" if is_open else "▸"
            files.layout.display = "" if is_open else "none"

    def _row_html(self, index: int, step: Mapping[str, Any]) -> str:
        cached = is_cached(step)
        result = result_text(step).partition(" (")[0]
        colour = {"CACHED": GREEN, "FAILED": RED, "done": GREY}.get(result, AMBER)
        state = badge(result, colour, f"nbdock-layer-{result.lower()}")
        reason = "" if cached or not step.get("reason") else (
            f' <span style="color:{GREY}">{esc(step["reason"])}</span>')
        seconds = f"{float(step['seconds']):.1f}s" if step.get("seconds") is not None else ""
        size = human_size(step["size"]) if step.get("size") is not None else ""
        line = f'<span style="color:{GREY}">line {esc(step["line"])}</span> ' if step.get("line") else ""
        return (
            f'<span class="nbdock-layer-step">#{esc(step.get("step", index + 1))}</span> {line}'
            f'<code>{esc(step.get("instruction", ""))}</code> {state}{reason} '
            f'<span style="color:{GREY}">{esc(seconds)} {esc(size)}</span>'
        )

    def text(self) -> str:
        table = stack_text(self.steps, self.image_size)
        return f"{self.title}\n{table}" if self.title else table

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = self.text()
        return bundle


def _details_html(step: Mapping[str, Any]) -> str:
    """What an expanded row shows: the layer's files, then what the step printed."""
    html_text = f'<pre class="nbdock-layer-files" style="margin:0 0 0 3em">{esc(file_tree(step))}</pre>'
    if step.get("output"):
        html_text += (
            f'<pre class="nbdock-layer-output" style="margin:0 0 0 3em;color:{GREY}">'
            f'{esc(str(step["output"])[-4000:])}</pre>'
        )
    return html_text


def _close_tree(widget: widgets.Widget) -> None:
    """Close a replaced row and its children, so their comms do not linger in the kernel."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
