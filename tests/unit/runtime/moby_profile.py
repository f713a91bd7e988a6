"""Docker's default seccomp profile (moby's ``default.json``), evaluated the way dockerd + runc do.

Given the container's capabilities, the rules that apply are picked like moby's
``setupSeccomp``: ``includes`` must all hold (every listed capability held, the host arch listed,
the kernel new enough) and no ``excludes`` may hold. The decision for one syscall then follows
libseccomp: a rule whose argument checks all pass gives its action, else the default action.
The kernel is taken to be new enough for every ``minKernel`` (these tests run on 6.x).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.unit.runtime.bpf_eval import SECCOMP_RET_ALLOW, errno_action

# moby matches ``includes.arches`` against the host's arch, not the ABI a syscall comes from.
HOST_GOARCH = "amd64"


@dataclass(frozen=True)
class MobyRule:
    names: frozenset[str]
    action: int
    args: tuple[tuple[int, str, int, int], ...]  # (index, op, value, valueTwo)


class MobyProfile:
    def __init__(self, path: Path, capabilities: Iterable[str]) -> None:
        document = json.loads(path.read_text())
        self.default_errno = document.get("defaultErrnoRet", 1)
        self.default = self._action(document["defaultAction"], self.default_errno)
        caps = set(capabilities)
        self.rules = [
            MobyRule(
                frozenset(entry["names"]),
                self._action(entry["action"], entry.get("errnoRet", self.default_errno)),
                tuple(
                    (arg["index"], arg["op"], arg["value"], arg.get("valueTwo", 0))
                    for arg in entry.get("args") or ()
                ),
            )
            for entry in document["syscalls"]
            if _applies(entry, caps)
        ]
        self.names = frozenset(name for rule in self.rules for name in rule.names)
        self.all_names = frozenset(n for entry in document["syscalls"] for n in entry["names"])
        self.arg_values = {
            name: {(a["index"], a["value"], a["op"]) for a in entry.get("args") or ()}
            for entry in document["syscalls"]
            for name in entry["names"]
        }

    @staticmethod
    def _action(name: str, err: int) -> int:
        if name == "SCMP_ACT_ALLOW":
            return SECCOMP_RET_ALLOW
        if name == "SCMP_ACT_ERRNO":
            return errno_action(err)
        raise ValueError(f"action {name} is not modelled")

    def decide(self, name: str, args: Sequence[int], bits: int) -> int:
        """The action for syscall ``name`` with ``args`` on an ABI with ``bits``-wide arguments."""
        actions = {
            rule.action
            for rule in self.rules
            if name in rule.names and all(_compare(check, args, bits) for check in rule.args)
        }
        if len(actions) > 1:
            raise AssertionError(f"the reference profile is ambiguous for {name}: {actions}")
        return actions.pop() if actions else self.default


def _applies(entry: dict, caps: set[str]) -> bool:
    includes, excludes = entry.get("includes") or {}, entry.get("excludes") or {}
    if HOST_GOARCH in (excludes.get("arches") or ()):
        return False
    if any(cap in caps for cap in excludes.get("caps") or ()):
        return False
    if excludes.get("minKernel"):
        return False  # the kernel is at least that new, so the exclusion holds
    if includes.get("arches") and HOST_GOARCH not in includes["arches"]:
        return False
    return all(cap in caps for cap in includes.get("caps") or ())


def _compare(check: tuple[int, str, int, int], args: Sequence[int], bits: int) -> bool:
    index, op, value, value_two = check
    mask = (1 << bits) - 1
    arg = (args[index] if index < len(args) else 0) & mask
    value &= mask
    if op == "SCMP_CMP_MASKED_EQ":
        return arg & value == value_two & mask
    return {
        "SCMP_CMP_EQ": arg == value, "SCMP_CMP_NE": arg != value,
        "SCMP_CMP_LT": arg < value, "SCMP_CMP_LE": arg <= value,
        "SCMP_CMP_GT": arg > value, "SCMP_CMP_GE": arg >= value,
    }[op]
