"""Dockerfile word expansion: BuildKit's shell lexer rules, as a small table of handlers.

A Dockerfile is not a shell script, yet ENV, WORKDIR, COPY, LABEL, … expand ``$VAR`` the way
BuildKit's ``frontend/dockerfile/shell`` lexer does, and users copy habits from one Dockerfile to
the next: the rules must be exactly BuildKit's, down to odd corners (``he\\\\$PWD`` gives
``he\\/home``). They are checked against BuildKit's own tables (``envVarTest``, ``wordsTest``).

The lexer scans a word once. Plain characters are copied (the escape character — ``\\`` or the
backtick chosen by ``# escape=`` — protects the next one); four characters start a handler:

- ``$``  a variable: ``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME-word}``, ``${NAME:+word}``,
  ``${NAME+word}``, ``${NAME:?msg}``, ``${NAME?msg}``, ``${NAME#pat}``, ``${NAME##pat}``,
  ``${NAME%pat}``, ``${NAME%%pat}``, ``${NAME/pat/repl}``, ``${NAME//pat/repl}``;
- ``'``  single quotes: everything literal up to the next ``'``;
- ``"``  double quotes: literal except ``$`` (expanded) and escapes of ``"``, ``$`` and the escape;
- ``<``  a possible heredoc marker ``<<``, kept glued to its word when splitting.

Expanding also records which variables were looked up (``used``) and which of those were unset
(``unset``): the builder needs the first to know that a changed ``ARG`` invalidates a step, lint
needs the second for ``UndefinedVar``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nbdock.dockerfile._shellwords import Words, pattern_regex, reverse_pattern, trim_prefix
from nbdock.errors import DockerfileError

_EOF = ""
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _ExpansionFailure(Exception):
    """Internal: a lexing error, turned into a ``DockerfileError`` naming the whole word."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Expansion:
    """The result of expanding one word: its value, its split words and the variables it read."""

    value: str
    words: tuple[str, ...]
    used: frozenset[str]
    unset: frozenset[str]


class ShellLexer:
    """BuildKit's ``shell.Lex`` with its options.

    ``raw_quotes`` keeps quote characters in the output, ``raw_escapes`` keeps escape characters,
    ``skip_quotes`` treats quotes as plain characters (heredoc bodies), ``skip_unset`` leaves
    references to unset variables as written (heredoc delimiter detection).
    """

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_quotes: bool = False,
        skip_unset: bool = False,
    ) -> None:
        if escape not in ("\\", "`"):
            raise DockerfileError(
                f"invalid escape token {escape!r}", hint="the escape character is \\ or `"
            )
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_quotes = skip_quotes
        self.skip_unset = skip_unset

    def process(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Expand ``word`` with ``env``; raises ``DockerfileError`` naming the word on bad syntax."""
        run = _Run(self, word, env)
        try:
            value, words = run.until(_EOF, self.raw_escapes)
        except _ExpansionFailure as exc:
            raise DockerfileError(
                f"failed to expand {word!r}: {exc.message}", hint=exc.hint
            ) from None
        return Expansion(value, tuple(words), frozenset(run.used), frozenset(run.unset))


class _Run:
    """One pass of the lexer over one word (the Go code's ``shellWord``)."""

    def __init__(self, lexer: ShellLexer, text: str, env: Mapping[str, str]) -> None:
        self.lx = lexer
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lexer.raw_escapes
        self.used: set[str] = set()
        self.unset: set[str] = set()
        self.handlers: dict[str, Callable[[], str]] = {"$": self.dollar, "<": self.heredoc_marker}
        if not lexer.skip_quotes:
            self.handlers["'"] = self.single_quote
            self.handlers['"'] = self.double_quote

    # -- the scanner -------------------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def lookup(self, name: str) -> str | None:
        self.used.add(name)
        value = self.env.get(name)
        if value is None:
            self.unset.add(name)
        return value

    # -- plain text up to a stop character ---------------------------------------------------
    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = Words()
        esc = self.lx.escape
        while self.peek() != _EOF:
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.finish()
            handler = self.handlers.get(ch)
            if handler is not None:
                piece = handler()
                result.append(piece)
                if ch == "$":
                    words.add_string(piece)  # an expanded value is split like plain text
                else:
                    words.add_raw(piece)  # quoted text stays one word
                continue
            ch = self.next()
            if ch == esc:
                if self.raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self.next()
                if ch == _EOF:
                    break  # an escape at the very end is dropped
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise _ExpansionFailure(
                f"unexpected end of statement while looking for matching {stop}",
                hint=f"add the missing {stop!r}",
            )
        return "".join(result), words.finish()

    # -- handlers ------------------------------------------------------------------------------
    def single_quote(self) -> str:
        opening = self.next()
        out = [opening] if self.lx.raw_quotes else []
        while True:
            ch = self.next()
            if ch == _EOF:
                raise _ExpansionFailure(
                    "unexpected end of statement while looking for matching single-quote",
                    hint="close the quote with ' (a single-quoted string cannot contain ')",
                )
            if ch == "'":
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        opening = self.next()
        out = [opening] if self.lx.raw_quotes else []
        esc = self.lx.escape
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise _ExpansionFailure(
                    "unexpected end of statement while looking for matching double-quote",
                    hint='close the quote with "',
                )
            if ch == '"':
                self.next()
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == esc:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue  # the next turn reports the missing quote
                if following in ('"', "$", esc):
                    ch = self.next()
            out.append(ch)

    def heredoc_marker(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        spaces = []
        while self.peek() in ("\t", "\r", " "):
            spaces.append(self.next())
        return "<<" + "".join(spaces)

    def name(self) -> str:
        """A variable name: letters, digits and ``_``; or all digits; or one special parameter."""
        out: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if not out and ch.isdecimal():
                while self.peek() != _EOF and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def dollar(self) -> str:
        self.next()  # the '$'
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None and self.lx.skip_unset:
                return "$" + name
            return value or ""
        self.next()  # the '{'
        if self.peek() == _EOF:
            raise _missing_brace()
        if self.peek() in "{}:":
            raise _ExpansionFailure(
                "syntax error: bad substitution", hint="write ${NAME} with a variable name"
            )
        name = self.name()
        op = self.next()
        if op == "}":
            value = self.lookup(name)
            if value is None and self.lx.skip_unset:
                return "${" + name + "}"
            return value or ""
        if op == _EOF:
            raise _missing_brace()
        if op == ":":
            return _colon(self, name)
        if op in _MODIFIERS:
            return _modify(self, name, op, False)
        if op == "/":
            return _replace(self, name)
        raise _unsupported(op)

    def modifier_word(self, raw_escapes: bool) -> str:
        """The word after a modifier, up to the closing brace (itself expanded)."""
        try:
            word, _ = self.until("}", raw_escapes)
        except _ExpansionFailure:
            if self.peek() == _EOF:
                raise _missing_brace() from None
            raise
        return word


def _missing_brace() -> _ExpansionFailure:
    return _ExpansionFailure("syntax error: missing '}'", hint="close the ${...} with }")


def _unsupported(op: str) -> _ExpansionFailure:
    return _ExpansionFailure(
        f"unsupported modifier ({op}) in substitution",
        hint="use ${VAR:-default}, ${VAR:+alt}, ${VAR:?message}, ${VAR#pat}, ${VAR%pat} "
        "or ${VAR/pat/repl}",
    )


def _colon(run: _Run, name: str) -> str:
    """``${NAME:op…}``: the ``-``, ``+``, ``?`` modifiers that also treat an empty value as unset."""
    op = run.next()
    if op in ("#", "%"):
        raise _unsupported(":" + op)
    if op in ("-", "+", "?"):
        return _modify(run, name, op, True)
    run.modifier_word(False)  # consume the rest as BuildKit does, then refuse it
    raise _unsupported(":" + op)


def _modify(run: _Run, name: str, op: str, null_is_unset: bool) -> str:
    """``${NAME<op>word}``: read the word, look the variable up, apply the table's handler."""
    word = run.modifier_word(op in ("#", "%"))
    value = run.lookup(name)
    if value is None and run.lx.skip_unset:
        return "${" + name + (":" if null_is_unset else "") + op + word + "}"
    unset = value is None or (null_is_unset and value == "")
    return _MODIFIERS[op](name, word, value or "", unset, value is None)


def _required(name: str, word: str, value: str, unset: bool, missing: bool) -> str:
    if unset:
        problem = "is not allowed to be unset" if missing else "is not allowed to be empty"
        raise _ExpansionFailure(
            f"{name}: {word or problem}",
            hint=f"define {name} with ARG or ENV, or pass --build-arg {name}=...",
        )
    return value


def _trim(op: str, word: str, value: str) -> str:
    greedy = word.startswith(op)
    if greedy:
        word = word[1:]
    try:
        if op == "#":
            return trim_prefix(word, value, greedy)
        # The shortest/longest *suffix*: reverse both sides and trim a prefix.
        return trim_prefix(reverse_pattern(word), value[::-1], greedy)[::-1]
    except ValueError as exc:
        raise _ExpansionFailure(f"invalid pattern ({word}) in substitution: {exc}") from None


def _replace(run: _Run, name: str) -> str:
    replace_all = run.peek() == "/"
    if replace_all:
        run.next()
    try:
        pattern, _ = run.until("/", True)
    except _ExpansionFailure:
        if run.peek() == _EOF:
            raise _ExpansionFailure(
                "syntax error: missing '/' in ${}", hint="write ${VAR/pattern/replacement}"
            ) from None
        raise
    replacement = run.modifier_word(True)
    value = run.lookup(name)
    if value is None and run.lx.skip_unset:
        return "${" + name + "/" + pattern + "/" + replacement + "}"
    try:
        regex = pattern_regex(pattern, greedy=True, anchored=False)
    except ValueError as exc:
        raise _ExpansionFailure(f"invalid pattern ({pattern}) in substitution: {exc}") from None
    if replace_all:
        return regex.sub(lambda _m: replacement, value or "")
    return regex.sub(lambda _m: replacement, value or "", count=1)


# name, word, value ("" when unset), unset (or empty for ":" forms), missing → result
_MODIFIERS: dict[str, Callable[[str, str, str, bool, bool], str]] = {
    "-": lambda name, word, value, unset, missing: word if unset else value,
    "+": lambda name, word, value, unset, missing: "" if unset else word,
    "?": _required,
    "#": lambda name, word, value, unset, missing: _trim("#", word, value),
    "%": lambda name, word, value, unset, missing: _trim("%", word, value),
}


# -- the public helpers ----------------------------------------------------------------------


def expand_word_tracking(word: str, env: Mapping[str, str], escape: str = "\\") -> Expansion:
    """Expand one word (ENV value, WORKDIR, COPY source, …) and report the variables it read."""
    return ShellLexer(escape).process(word, env)


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word; quotes are removed, spaces kept (``ProcessWord`` in BuildKit)."""
    return ShellLexer(escape).process(word, env).value


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand ``text`` and split it into words on unquoted spaces (``ProcessWords``)."""
    return list(ShellLexer(escape).process(text, env).words)
