"""Text formatting for the CLI: aligned tables, Docker's human durations and sizes."""

from __future__ import annotations

import time
from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def since(iso: str) -> float:
    """Seconds elapsed since an RFC 3339 UTC time as the engine records it."""
    if not iso or iso.startswith("0001"):
        return 0.0
    base = iso.split(".")[0].rstrip("Z")
    try:
        stamp = time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return 0.0
    return max(0.0, time.time() - stamp)


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration wording."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} seconds" if int(seconds) != 1 else "1 second"
    minutes = seconds / 60
    if minutes < 60:
        return f"{int(minutes)} minutes" if int(minutes) != 1 else "About a minute"
    hours = minutes / 60
    if hours < 48:
        return f"{int(hours)} hours" if int(hours) != 1 else "About an hour"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days"
    return f"{int(days / 7)} weeks"


def human_size(size: int) -> str:
    """Docker's decimal units (docker images shows 4.26MB, not MiB)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"
