"""``nbdock run [OPTIONS] IMAGE [COMMAND...]`` read without argparse, when its words are plain.

Why: argparse costs ~4 ms of every start (its import, gettext and locale lookups, building the
parser), and ``nbdock run`` is the command people time. This reads only the plain spellings of
run's options — an exact name, its value as the next word (or ``--name=value``) — and gives the
attributes argparse would. Anything else (help, abbreviations, combined short flags, ``-eK=V``,
a value that starts with ``-``, ``--``, a bad value, a missing image) returns None, and argparse
(``parser.py``, the reference) reads the words, prints help or the usage error.
``tests/unit/cli/test_quickparse.py`` checks both give the same namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

# run's options (parser._add_run_options), by spelling -> destination.
_FLAGS = {"--rm": "rm", "-d": "detach", "--detach": "detach", "--read-only": "read_only"}
_VALUES = {
    "--name": "name", "-w": "workdir", "--workdir": "workdir", "-u": "user", "--user": "user",
    "--hostname": "hostname", "-h": "hostname", "--entrypoint": "entrypoint", "-m": "memory",
    "--memory": "memory", "--cpus": "cpus", "--pids-limit": "pids_limit", "--network": "network",
    "--net": "network",
}
_LISTS = {
    "-e": "env", "--env": "env", "-v": "volume", "--volume": "volume", "--tmpfs": "tmpfs",
    "--label": "label", "-l": "label",
}
_NETWORKS = ("none", "host")


def _defaults() -> dict[str, object]:
    return {
        "cmd": "run", "rm": False, "detach": False, "name": "", "env": [], "workdir": "",
        "user": None, "hostname": "", "entrypoint": None, "volume": [], "tmpfs": [],
        "read_only": False, "memory": None, "cpus": None, "pids_limit": None, "network": "none",
        "label": [],
    }


def parse_run(words: Sequence[str]) -> SimpleNamespace | None:
    """The namespace argparse would give for ``words`` (``run ...``), or None: ask argparse."""
    if not words or words[0] != "run" or "--" in words:
        return None
    values = _defaults()
    index = 1
    while index < len(words):
        word = words[index]
        if not word.startswith("-"):
            break  # the image: every word after it is the command
        if word in _FLAGS:
            values[_FLAGS[word]] = True
            index += 1
            continue
        name, equals, value = word.partition("=")
        if equals and not name.startswith("--"):
            return None  # -e=K=V: argparse's rules for attached short values are subtle
        if not equals:
            if index + 1 == len(words):
                return None
            value = words[index + 1]
            if value.startswith("-"):
                return None  # an option, a negative number or a value: argparse decides
        if not value or not _store(values, name, value):
            return None
        index += 1 if equals else 2
    if index == len(words) or not words[index]:
        return None
    values["image"] = words[index]
    values["command"] = list(words[index + 1 :])
    return SimpleNamespace(**values)


def _store(values: dict[str, object], name: str, value: str) -> bool:
    """Record one option's value as argparse would; False when argparse should judge it."""
    if name in _LISTS:
        items = values[_LISTS[name]]
        assert isinstance(items, list)
        values[_LISTS[name]] = [*items, value]
        return True
    destination = _VALUES.get(name)
    if destination is None:
        return False
    if destination == "pids_limit":
        try:
            values[destination] = int(value)  # argparse's type=int
        except ValueError:
            return False
        return True
    if destination == "network" and value not in _NETWORKS:
        return False
    values[destination] = value
    return True
