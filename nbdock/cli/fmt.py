"""Text formatting for the CLI: aligned tables, Docker's human durations and sizes."""

from __future__ import annotations

import time
from collections.abc import Sequence

from nbdock.client.humanize import human_duration, human_size

__all__ = ["human_duration", "human_size", "since", "table"]


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
