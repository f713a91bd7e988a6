"""``.dockerignore`` matching with Docker's semantics (moby/patternmatcher + ignorefile).

Rules, in Docker's order: a line starting with ``#`` is a comment; each pattern is trimmed,
cleaned like Go's ``filepath.Clean`` (so ``./a/../b`` is ``b``) and loses a leading ``/``; a
leading ``!`` makes an exception. Patterns use Go's ``filepath.Match`` syntax (``*``, ``?``,
``[a-z]``, ``[^a]``, ``\\`` escapes) plus ``**`` for any number of directories. The last matching
pattern wins, and a pattern that matches a directory matches everything inside it.

``can_skip_dir`` tells the context walker it may skip a whole directory (not even list it):
true when the directory is excluded and no exception could re-include something inside it —
BuildKit's fsutil makes the same decision, and the same conservative choice when exceptions use
wildcards.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from nbdock.errors import DockerfileError

MatchType = Literal["exact", "prefix", "suffix", "regexp"]
_REGEX_ESCAPE = frozenset(".+()|{}$")
_PATTERN_CHARS = frozenset("*[]?^\\")


def go_clean(path: str) -> str:
    """Go's ``path.Clean``: collapse slashes, drop ``.``, resolve ``..``; "" becomes ".\""""
    rooted = path.startswith("/")
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(comp)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def _bad(pattern: str) -> DockerfileError:
    return DockerfileError(
        f"syntax error in pattern {pattern!r}",
        hint="close every '[' with ']', avoid empty or reversed ranges and a trailing '\\'",
        filename=".dockerignore",
    )


def _check_glob(pattern: str) -> None:
    """Reject what Go's ``filepath.Match`` calls ``ErrBadPattern``."""

    def escaped_char(i: int) -> int:
        if i >= len(pattern) or pattern[i] in "-]":
            raise _bad(pattern)
        if pattern[i] == "\\":
            i += 1
            if i >= len(pattern):
                raise _bad(pattern)
        i += 1
        if i >= len(pattern):
            raise _bad(pattern)  # a class must be closed
        return i

    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise _bad(pattern)
            i += 2
        elif ch == "[":
            i += 1
            if i < len(pattern) and pattern[i] == "^":
                i += 1
            ranges = 0
            while not (i < len(pattern) and pattern[i] == "]" and ranges > 0):
                i = escaped_char(i)
                if pattern[i] == "-":
                    i = escaped_char(i + 1)
                ranges += 1
            i += 1
        else:
            i += 1


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern; ``exclusion`` for ``!pattern``; ``line`` in the ignore file."""

    text: str
    exclusion: bool = False
    line: int | None = None
    match_type: MatchType = field(default="exact", init=False)
    regex: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_glob(self.text)
        kind, source = _compile(self.text)
        regex = None
        if kind == "regexp":
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    regex = re.compile(source)
            except re.error:
                raise _bad(self.text) from None
        object.__setattr__(self, "match_type", kind)
        object.__setattr__(self, "regex", regex)

    def match(self, path: str) -> bool:
        """Whether this pattern matches ``path`` itself (not its parents)."""
        if self.match_type == "exact":
            return path == self.text
        if self.match_type == "prefix":
            return path.startswith(self.text[:-2])
        if self.match_type == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None

    def without_trailing_glob(self) -> str:
        text = self.text.removesuffix("/**")
        return text.removesuffix("/*")


def _compile(pattern: str) -> tuple[MatchType, str]:
    """patternmatcher's ``compile``: pick the cheapest match type, else build a regex."""
    out = ["^"]
    kind: MatchType = "exact"
    i = 0
    step = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1  # "**/" is "**"
                if i >= len(pattern):
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out.append(".*")
                        kind = "regexp"
                else:
                    out.append("(.*/)?")
                    kind = "regexp"
                if step == 0:
                    kind = "suffix"
            else:
                out.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in _REGEX_ESCAPE:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < len(pattern):
                out.append("\\" + pattern[i])
                i += 1
                kind = "regexp"
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(ch)
        step += 1
    return kind, "".join(out) + r"\Z"


class DockerIgnore:
    """A compiled ``.dockerignore`` (or a list of ``--exclude`` patterns)."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self.patterns: tuple[Pattern, ...] = tuple(patterns)
        self.has_exclusions = any(p.exclusion for p in self.patterns)
        self._prefix_only_exceptions = not any(
            p.exclusion and _PATTERN_CHARS.intersection(p.without_trailing_glob())
            for p in self.patterns
        )

    @classmethod
    def from_text(cls, text: str) -> DockerIgnore:
        """Parse a ``.dockerignore`` file's text (comments, ``!``, leading ``/`` and ``./``)."""
        if text.startswith("\ufeff"):
            text = text[1:]
        found: list[Pattern] = []
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.removesuffix("\r")
            if line.startswith("#"):
                continue
            pattern = line.strip()
            if not pattern:
                continue
            invert = pattern.startswith("!")
            if invert:
                pattern = pattern[1:].strip()
            if pattern:
                pattern = go_clean(pattern)
                if len(pattern) > 1 and pattern.startswith("/"):
                    pattern = pattern[1:]
            try:
                found.append(_make(("!" if invert else "") + pattern, number))
            except DockerfileError as exc:
                raise exc.at(number, raw) from None
        return cls(found)

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> DockerIgnore:
        """Patterns given one by one (``COPY --exclude``), with patternmatcher's cleaning."""
        return cls(_make(p, None) for p in patterns if p.strip())

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, rel_path: str) -> bool:
        """Whether ``rel_path`` (slash-separated, relative to the context) is excluded."""
        path = go_clean(rel_path.lstrip("/")) if rel_path.strip("/") else "."
        if path == ".":
            return False  # excluding the context root itself is meaningless
        parent_dirs = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # only a pattern that can change the verdict is worth checking
            hit = pattern.match(path) or any(
                pattern.match("/".join(parent_dirs[: i + 1])) for i in range(len(parent_dirs))
            )
            if hit:
                matched = not pattern.exclusion
        return matched

    def can_skip_dir(self, rel_dir: str) -> bool:
        """Whether a walker may skip ``rel_dir`` and everything below it."""
        if not self.matches(rel_dir):
            return False
        if not self.has_exclusions:
            return True
        if not self._prefix_only_exceptions:
            return False  # a wildcard exception might re-include anything
        dir_slash = go_clean(rel_dir.lstrip("/")) + "/"
        return not any(
            p.exclusion and (p.without_trailing_glob() + "/").startswith(dir_slash)
            for p in self.patterns
        )


def _make(raw: str, line: int | None) -> Pattern:
    text = go_clean(raw.strip())
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            raise DockerfileError(
                'illegal exclusion pattern: "!"',
                line=line,
                hint="write !<pattern> to re-include files",
                filename=".dockerignore",
            )
        text = text[1:]
    return Pattern(text, exclusion, line)
