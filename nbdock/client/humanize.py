"""Sizes and durations worded as Docker's CLI words them (go-units), for every front end."""

from __future__ import annotations


def human_size(size: int) -> str:
    """Docker's decimal units: ``docker images`` shows 4.26MB, not MiB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration: ``Less than a second``, ``About a minute``, ``3 hours``, ..."""
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
