"""Go's ``path.Match`` for COPY/ADD source wildcards, one path component at a time.

BuildKit resolves ``COPY *.txt /dst/`` with Go's ``filepath.Glob``: the pattern is split at
slashes and each component is matched with ``filepath.Match`` against the names in a directory,
so ``*`` never crosses a ``/`` and (unlike a shell) also matches names starting with a dot.
Syntax: ``*``, ``?``, ``[abc]``, ``[a-z]``, ``[^a]`` / ``[!a]``, and ``\\`` escaping the next
character.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nbdock.errors import DockerfileError


def has_wildcards(text: str) -> bool:
    """Whether ``text`` holds an unescaped ``*``, ``?`` or ``[`` (BuildKit's containsWildcards)."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "*?[":
            return True
        if ch == "\\":
            i += 1
        i += 1
    return False


def unescape(text: str) -> str:
    """A wildcard-free component with its backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", text)


@lru_cache(maxsize=256)
def component_regex(pattern: str) -> re.Pattern[str]:
    """Compile one path component of a Go pattern into an anchored regex."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i >= n:
                raise _bad(pattern)
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            i = _char_class(pattern, i, out)
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _char_class(pattern: str, i: int, out: list[str]) -> int:
    n = len(pattern)
    parts = ["["]
    if i < n and pattern[i] in "^!":
        parts.append("^/")
        i += 1
    first = True
    while True:
        if i >= n:
            raise _bad(pattern)
        ch = pattern[i]
        if ch == "]" and not first:
            i += 1
            break
        first = False
        lo, i = _class_char(pattern, i)
        if i < n and pattern[i] == "-" and i + 1 < n and pattern[i + 1] != "]":
            hi, i = _class_char(pattern, i + 1)
            if hi < lo:
                raise _bad(pattern)
            parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
        else:
            parts.append(re.escape(lo))
    parts.append("]")
    out.append("".join(parts))
    return i


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    ch = pattern[i]
    if ch == "\\":
        if i + 1 >= len(pattern):
            raise _bad(pattern)
        return pattern[i + 1], i + 2
    return ch, i + 1


def match_component(pattern: str, name: str) -> bool:
    return component_regex(pattern).match(name) is not None


def _bad(pattern: str) -> DockerfileError:
    return DockerfileError(
        f"syntax error in source pattern {pattern!r}",
        hint="close every '[' with ']' and do not end a pattern with a lone '\\'",
    )
