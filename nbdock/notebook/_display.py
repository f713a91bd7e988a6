"""Plain-text and HTML renderings shared by the magics and widgets.

Every output nbdock puts in a notebook carries a ``text/plain`` beside its HTML or widget view, and
that text is deterministic (no uptimes, no percentages): nbconvert, nbclient, nbval and terminal
IPython all read ``text/plain``, and nbval compares it between runs. Volatile detail (times, CPU)
lives only in the HTML and the widgets. Ids, digests and sizes do appear in text; a notebook under
nbval sanitizes those (see ``notebooks/sanitize.cfg``).
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

from IPython.display import display

from nbdock.client.humanize import human_duration as human_duration  # re-exported
from nbdock.client.humanize import human_size as _docker_size

GREEN = "#1a7f37"
RED = "#cf222e"
GREY = "#6e7781"
AMBER = "#9a6700"

_STATE_COLOURS = {"running": GREEN, "created": AMBER, "exited": GREY, "removed": GREY}


def publish(html_text: str, plain: str) -> None:
    """Show one output with an HTML view and its plain-text fallback."""
    display({"text/html": html_text, "text/plain": plain}, raw=True)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def badge(text: str, colour: str, css_class: str = "") -> str:
    """A small coloured pill; ``css_class`` lets browser tests and users' CSS find it."""
    return (
        f'<span class="nbdock-badge {esc(css_class)}" style="background:{colour};color:#fff;'
        f'border-radius:0.8em;padding:0.1em 0.7em;font-family:monospace;font-size:90%">'
        f"{esc(text)}</span>"
    )


def state_badge(state: str, exit_code: int | None = None) -> str:
    if state == "exited" and exit_code not in (None, 0):
        return badge(f"exited ({exit_code})", RED, "nbdock-state nbdock-state-exited")
    label = f"exited ({exit_code})" if state == "exited" and exit_code is not None else state
    return badge(label, _STATE_COLOURS.get(state, GREY), f"nbdock-state nbdock-state-{state}")


def exit_text(code: int | None, error: str = "", interrupted: bool = False, oom: bool = False) -> str:
    """The line nbval and terminals see after a run: the code, and why when it failed."""
    if code is None:
        return "exit code unknown (the container's supervisor vanished)"
    parts = [f"exit code {code}"]
    if interrupted:
        parts.append("interrupted")
    if oom:
        parts.append("OOM killed")
    if code != 0 and not interrupted and not oom:
        parts.append("failed")
    text = parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")
    return f"{text}: {error}" if error else text


def exit_badge(code: int | None, error: str = "", interrupted: bool = False, oom: bool = False,
               seconds: float | None = None) -> None:
    """Green for 0, red for anything else: a failed run is visible at a glance."""
    ok = code == 0
    label = "exit 0" if ok else f"exit {code if code is not None else '?'}"
    detail = exit_text(code, error, interrupted, oom).partition(": ")[2]
    took = f' <span style="color:{GREY}">in {seconds:.1f}s</span>' if seconds is not None else ""
    extra = f' <span style="color:{RED}">{esc(detail)}</span>' if detail else ""
    css = "nbdock-exit-ok" if ok else "nbdock-exit-failed"
    html_text = f'<div class="nbdock-exit">{badge(label, GREEN if ok else RED, css)}{took}{extra}</div>'
    publish(html_text, exit_text(code, error, interrupted, oom))


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], css_class: str) -> str:
    """Rows are already-escaped HTML cells, so callers can put badges in them."""
    head = "".join(f'<th style="text-align:left">{esc(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="text-align:left">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return f'<table class="{esc(css_class)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Docker's aligned columns, three spaces apart."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    return "\n".join(
        "   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [headers, *rows]
    )


def human_size(size: int | None) -> str:
    """Docker's decimal units; ``-`` for a step that made no layer."""
    return "-" if size is None else _docker_size(size)


def clock(seconds: float) -> str:
    """An uptime as ``1:02:03`` / ``2:03``: compact enough to tick in a widget."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def parse_time(iso: str) -> float | None:
    """Seconds since the epoch from the engine's RFC 3339 UTC stamps; None for Go's zero time."""
    if not iso or iso.startswith("0001"):
        return None
    base, _, fraction = iso.rstrip("Z").partition(".")
    try:
        stamp = time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return None
    return stamp + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def state_text(state: dict[str, Any]) -> str:
    """``running`` / ``exited (0)`` / ``created``: the stable part of ``docker ps``'s STATUS."""
    status = str(state.get("Status", "unknown"))
    if status == "exited":
        oom = ", OOM killed" if state.get("OOMKilled") else ""
        return f"exited ({state.get('ExitCode')}{oom})"
    return status


def error_lines(error: BaseException, first_only: bool = False) -> list[str]:
    """What a failed magic shows instead of a traceback: the error's class and message, in red."""
    first, *rest = str(error).splitlines() or [""]
    return [f"\x1b[31m{type(error).__name__}: {first}\x1b[0m", *([] if first_only else rest)]
