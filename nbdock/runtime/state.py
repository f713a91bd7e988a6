"""A container's lifecycle as an explicit state machine, persisted as JSON beside its files.

    created ──start──► running ──(PID 1 exits / killed)──► exited ──rm──► (gone)
       └──────────────────────────rm──────────────────────────────┘

Several processes read and write it (the caller, the supervisor, a CLI in another terminal), so
every write is an atomic rename, and liveness is decided from the kernel (pid plus its start time,
which guards against pid reuse), never from the file alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nbdock.errors import Conflict

ALLOWED = {
    "created": {"running", "exited", "removing"},
    "running": {"exited"},
    "exited": {"running", "removing"},
    "removing": set(),
}


@dataclass
class State:
    id: str
    name: str
    status: str = "created"
    created: str = ""
    pid: int = 0
    pid_start: int = 0
    shim_pid: int = 0
    shim_start: int = 0
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    auto_remove: bool = False
    # The cgroup's directory name when it is not the id: a pre-warmed container (runtime/pool.py)
    # was put in its cgroup before it had an id. Read through ``cgroup_name``.
    cgroup: str = ""

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
        json.dump(dataclasses.asdict(state), handle)
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
