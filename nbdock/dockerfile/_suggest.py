"""Suggestions ("did you mean …?") for misspelled names, with BuildKit's rule: edit distance below 3."""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def closest(value: str, options: Iterable[str], *, case_sensitive: bool = False) -> str | None:
    """The option nearest to ``value`` at distance < 3, or None (also when ``value`` is exact)."""
    probe = value if case_sensitive else value.lower()
    best: str | None = None
    best_distance = 3
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == probe:
            return None
        distance = edit_distance(probe, candidate)
        if distance < best_distance:
            best, best_distance = option, distance
    return best


def did_you_mean(
    value: str, options: Iterable[str], *, quote: bool = True, case_sensitive: bool = False
) -> str | None:
    """``did you mean "RUN"?`` for the closest option, or None."""
    match = closest(value, options, case_sensitive=case_sensitive)
    if match is None:
        return None
    return f'did you mean "{match}"?' if quote else f"did you mean {match}?"
