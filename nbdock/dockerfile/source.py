"""Reading the Dockerfile text the way BuildKit's scanner does, for what the parser hides.

The ``dockerfile`` package (BuildKit's parser compiled in) gives us instructions but not three
things we need: the parser directives (``# syntax=``, ``# escape=``, ``# check=``), the heredoc
delimiter details (``<<-`` strips tabs, a quoted ``<<'EOF'`` disables expansion), and *where*
a parse error happened (its errors carry no line). This module rebuilds those with BuildKit's
rules: directives only in the leading comment block, continuation lines ending in the escape
character, comment and blank lines skipped inside continuations, heredoc bodies up to their
delimiter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from nbdock.dockerfile.expansion import ShellLexer
from nbdock.errors import DockerfileError

DIRECTIVE_NAMES = ("syntax", "escape", "check")
_GO_SPACE = "\t\n\f\r "
_DIRECTIVE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_HEREDOC = re.compile(r"^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_SPLIT = re.compile(r"[\t\v\f\r ]+")
_BOM = "\ufeff"


@dataclass(frozen=True)
class Directive:
    """``# name=value`` at the top of the file, before any instruction, comment or blank line."""

    name: str
    value: str
    line: int


def split_lines(text: str) -> list[str]:
    """Lines as BuildKit's scanner sees them: split on ``\\n`` only, ends kept, BOM dropped."""
    if text.startswith(_BOM):
        text = text[1:]
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def parse_directives(text: str) -> tuple[Directive, ...]:
    """The parser directives, checked like BuildKit (one of each, escape is ``\\`` or `` ` ``)."""
    found: list[Directive] = []
    seen: set[str] = set()
    for number, raw in enumerate(split_lines(text), 1):
        line = raw.rstrip("\r\n").lstrip()
        if not line.startswith("#"):
            break
        match = _DIRECTIVE.match(line[1:].lstrip())
        if match is None or match.group(1).lower() not in DIRECTIVE_NAMES:
            break
        name, value = match.group(1).lower(), match.group(2)
        if name in seen:
            raise DockerfileError(
                f"only one {name} parser directive can be used",
                line=number,
                hint=f"remove the second '# {name}=' line",
                instruction=raw,
            )
        if name == "escape" and value not in ("\\", "`"):
            raise DockerfileError(
                f"invalid escape token {value!r} does not match ` or \\",
                line=number,
                hint="write '# escape=\\' (the default) or '# escape=`'",
                instruction=raw,
            )
        seen.add(name)
        found.append(Directive(name, value, number))
    return tuple(found)


@dataclass(frozen=True)
class HeredocMarker:
    """A ``[fd]<<[-]WORD`` marker found in an instruction's words."""

    name: str
    fd: int
    chomp: bool
    expand: bool


def parse_heredoc_marker(word: str) -> HeredocMarker | None:
    """The marker in ``word`` (BuildKit's ``ParseHeredoc``), or None if it is not one.

    A delimiter with quotes in it (``'EOF'``, ``"EOF"``, ``E"O"F``) means "do not expand the
    body": BuildKit detects it by lexing the word with and without raw quotes and comparing.
    """
    match = _HEREDOC.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    words = ShellLexer("\\", skip_unset=True).process(rest, {}).words
    if len(words) != 1:
        return None
    raw = ShellLexer("\\", raw_quotes=True, skip_unset=True).process(rest, {}).words
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return HeredocMarker(
        name=words[0],
        fd=int(match.group(1) or 0),
        chomp=match.group(2) == "-",
        expand=quotes == raw_quotes,
    )


def heredoc_markers(line: str) -> list[HeredocMarker]:
    """All heredoc markers among the words of ``line``, in order."""
    lexer = ShellLexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True)
    try:
        words = lexer.process(line, {}).words
    except DockerfileError:
        return []  # BuildKit ignores lexing errors here: the line simply has no heredoc
    found: list[HeredocMarker] = []
    for word in words:
        marker = parse_heredoc_marker(word)
        if marker is not None:
            found.append(marker)
    return found


def chomp(content: str) -> str:
    """Strip the leading tabs of every line (what ``<<-EOF`` asks for)."""
    return _LEADING_TABS.sub("", content)


def _continuation(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")


def _is_comment(raw: str) -> bool:
    return raw.lstrip().startswith("#")


def _may_hold_heredoc(line: str) -> bool:
    """RUN/COPY/ADD (also under ONBUILD) in non-JSON form can carry heredocs."""
    parts = _SPLIT.split(line.strip(), maxsplit=1)
    command = parts[0].lower()
    rest = parts[1] if len(parts) > 1 else ""
    if command == "onbuild":
        parts = _SPLIT.split(rest.strip(), maxsplit=1)
        command, rest = parts[0].lower(), (parts[1] if len(parts) > 1 else "")
    if command not in ("run", "copy", "add"):
        return False
    words = rest.split()
    while words and words[0].startswith("--"):
        words.pop(0)
    try:
        return not isinstance(json.loads(" ".join(words)), list)
    except ValueError:
        return True


def logical_spans(text: str, escape: str) -> list[tuple[int, int]]:
    """(first line, last line) of every instruction, following BuildKit's scanner.

    Used only to find which instruction a parse error belongs to, by re-parsing each alone.
    """
    lines = split_lines(text)
    continuation = _continuation(escape)
    spans: list[tuple[int, int]] = []
    i = 0

    def trim(line: str) -> tuple[str, bool]:
        if continuation.search(line):
            return continuation.sub(r"\1", line), False
        return line, True

    while i < len(lines):
        first = lines[i].rstrip("\r\n").lstrip()
        i += 1
        start = i
        if first.startswith("#"):
            first = ""
        buf, done = trim(first)
        if done and not buf:
            continue
        parts = [buf]
        while not done and i < len(lines):
            raw = lines[i]
            i += 1
            if _is_comment(raw) or not raw.rstrip("\r\n").lstrip():
                continue
            piece, done = trim(raw.rstrip("\r\n"))
            parts.append(piece)
        logical = "".join(parts)
        if "<<" in logical and _may_hold_heredoc(logical):
            for marker in heredoc_markers(logical):
                while i < len(lines):
                    candidate = lines[i].rstrip("\r\n")
                    i += 1
                    if (candidate.lstrip("\t") if marker.chomp else candidate) == marker.name:
                        break
        spans.append((start, i))
    return spans
