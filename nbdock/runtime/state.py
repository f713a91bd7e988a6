"""A container's lifecycle as an explicit state machine, persisted as JSON beside its files.

    created ──start──► running ──(PID 1 exits / killed)──► exited ──rm──► (gone)
       └──────────────────────────rm──────────────────────────────┘

Several processes read and write it (the caller, the supervisor, a CLI in another terminal), so
every write is an atomic rename, and liveness is decided from the kernel (pid plus its start time,
which guards against pid reuse), never from the file alone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from nbdock.errors import Conflict
from nbdock.runtime._plain import Plain

ALLOWED = {
    "created": {"running", "exited", "removing"},
    "running": {"exited"},
    "exited": {"running", "removing"},
    "removing": set(),
}


class State(Plain):
    """One container's record; the fields are state.json's keys, in the order they are written."""

    __slots__ = (
        "id", "name", "status", "created", "pid", "pid_start", "shim_pid", "shim_start",
        "started_at", "finished_at", "exit_code", "oom_killed", "error", "auto_remove", "cgroup",
    )

    def __init__(
        self,
        id: str,
        name: str,
        status: str = "created",
        created: str = "",
        pid: int = 0,
        pid_start: int = 0,
        shim_pid: int = 0,
        shim_start: int = 0,
        started_at: str = "",
        finished_at: str = "",
        exit_code: int | None = None,
        oom_killed: bool = False,
        error: str = "",
        auto_remove: bool = False,
        # The cgroup's directory name when it is not the id: a pre-warmed container (runtime/pool.py)
        # was put in its cgroup before it had an id. Read through ``cgroup_name``.
        cgroup: str = "",
    ) -> None:
        self.id = id
        self.name = name
        self.status = status
        self.created = created
        self.pid = pid
        self.pid_start = pid_start
        self.shim_pid = shim_pid
        self.shim_start = shim_start
        self.started_at = started_at
        self.finished_at = finished_at
        self.exit_code = exit_code
        self.oom_killed = oom_killed
        self.error = error
        self.auto_remove = auto_remove
        self.cgroup = cgroup

    @property
    def cgroup_name(self) -> str:
        return self.cgroup or self.id

    def transition(self, status: str) -> None:
        if status not in ALLOWED[self.status]:
            raise Conflict(f"container {self.name or self.id[:12]} cannot go from {self.status} to {status}")
        self.status = status


def now_iso() -> str:
    stamp = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1e9):09d}Z"


def load(directory: Path) -> State:
    with open(directory / "state.json") as handle:
        return State(**json.load(handle))


def save(directory: Path, state: State) -> None:
    temp = directory / f".state.{os.getpid()}.tmp"
    with open(temp, "w") as handle:
        # dumps, not dump: dump streams through json's pure-Python encoder (2x slower here, and
        # more of the interpreter touched in a freshly forked supervisor); the bytes are the same.
        handle.write(json.dumps(state.as_dict()))
    os.replace(temp, directory / "state.json")


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: with the pid, it names one process for its whole life."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie has finished; only its parent's wait is missing
        return None
    return int(fields[19])


def is_alive(pid: int, start: int) -> bool:
    return pid > 0 and process_start_time(pid) == start
