"""Small static looks at shell commands, for lint: apt without ``-y``, exec-form suggestions.

These never run anything; they tokenise with ``shlex`` and look for patterns learners trip on.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence

_SEGMENTS = re.compile(r"&&|\|\||[;&|\n]")
_APT = ("apt-get", "apt")
_PROMPTING = ("install", "upgrade", "dist-upgrade", "full-upgrade", "remove", "purge")
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?\[\]~{}\\'\"]|^\s*\w+=")
_OPTIONS_WITH_VALUE = ("-o", "-c", "-t", "--option", "--config-file", "--target-release")
_TRUE = ("", "1", "true", "yes", "on")


def _tokens(segment: str) -> list[str]:
    try:
        return shlex.split(segment, comments=True)
    except ValueError:
        return segment.split()


def _assumes_yes(args: Sequence[str]) -> bool:
    """Whether apt's options answer its prompts: ``-y``, ``--yes``, ``--assume-yes``, ``-qq``…"""
    quiet = 0
    previous = ""
    for arg in args:
        name, _, value = arg.partition("=")
        if name in ("-y", "--yes", "--assume-yes") and value.lower() in _TRUE:
            return True
        if re.fullmatch(r"-[A-Za-z]+", arg):
            if "y" in arg:
                return True
            quiet += arg.count("q")
        elif name in ("--quiet", "-q") and value:
            quiet += int(value) if value.isdecimal() else 1
        elif arg == "--quiet":
            quiet += 1
        option = arg[2:] if arg.startswith("-o") and len(arg) > 2 else arg
        if (previous == "-o" or arg.startswith("-o")) and option.lower().startswith(
            "apt::get::assume-yes="
        ):
            return option.partition("=")[2].lower() in _TRUE
        previous = arg
    return quiet >= 2  # apt-get: quiet level 2 implies -y


def apt_without_yes(script: str) -> str | None:
    """The first ``apt-get install …`` (or upgrade/remove) that would stop at a prompt, or None."""
    if re.search(r"\byes\b[^|&;]*\|", script):
        return None  # `yes | apt-get install …` answers the prompts
    for segment in _SEGMENTS.split(script):
        found = apt_argv_without_yes(_tokens(segment))
        if found:
            return found
    return None


def apt_argv_without_yes(argv: Sequence[str]) -> str | None:
    """Like ``apt_without_yes`` for one command line already split into words."""
    for index, word in enumerate(argv):
        if word.rsplit("/", 1)[-1] in _APT:
            rest = list(argv[index + 1 :])
            if _action(rest) in _PROMPTING and not _assumes_yes(rest):
                return " ".join(argv[index:])
            return None
    return None


def _action(args: Sequence[str]) -> str | None:
    """apt's sub-command: the first word that is neither an option nor an option's value."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def exec_form_suggestion(command: str) -> str | None:
    """``["python", "app.py"]`` for a shell command that needs no shell, else None."""
    if _SHELL_SYNTAX.search(command):
        return None
    words = command.split()
    if not words:
        return None
    return json.dumps(words)
