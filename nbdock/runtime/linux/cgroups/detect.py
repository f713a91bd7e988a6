"""Which cgroup layout this host has, and the backend that fits it.

Three layouts exist in the wild:
- pure v2 (most current distributions): ``/sys/fs/cgroup`` is cgroup2 with the controllers;
- hybrid (systemd's old default, and this development machine): v1 controllers under
  ``/sys/fs/cgroup/<controller>`` plus a controller-less cgroup2 at ``/sys/fs/cgroup/unified``;
- legacy v1 only.
The layout is read from ``/proc/self/mountinfo`` rather than guessed from paths, because
co-mounted v1 hierarchies (``cpu,cpuacct``) and unusual mount points are common.
"""

from __future__ import annotations

import _thread
import os
from pathlib import Path

from nbdock.errors import UnsupportedFeature
from nbdock.runtime._plain import Frozen
from nbdock.runtime.linux.cgroups.base import Cgroup, parent_name, remove_tree
from nbdock.runtime.linux.cgroups.v1 import V1Cgroup
from nbdock.runtime.linux.cgroups.v2 import V2Cgroup
from nbdock.runtime.spec import Limits

MOUNTINFO = Path("/proc/self/mountinfo")
# The mount points a cgroup2 hierarchy normally has; preferred over any other bind of it.
_USUAL_V2 = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
# Options of a v1 cgroup mount that name a controller (the rest: rw, xattr, name=systemd, ...).
_V1_CONTROLLERS = frozenset(
    ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio")
    + ("perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc")
)


class CgroupLayout(Frozen):
    """The cgroup mounts of this host: v1 controller -> mount point, and the cgroup2 mount."""

    __slots__ = ("v1", "v2")
    v1: dict[str, Path]
    v2: Path | None

    def __init__(self, v1: dict[str, Path] | None = None, v2: Path | None = None) -> None:
        self._set(v1={} if v1 is None else v1, v2=v2)

    @property
    def all_mounts(self) -> list[Path]:
        mounts = list(dict.fromkeys(self.v1.values()))
        return [*mounts, self.v2] if self.v2 else mounts


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as ``\\ooo`` (octal)."""
    if "\\" not in text:  # nearly always: no regexp to compile
        return text
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> CgroupLayout:
    """Find the cgroup hierarchies in a mountinfo text (see proc(5) for the format)."""
    v1: dict[str, Path] = {}
    v2: list[Path] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fstype, _source, options = (right.split(" ") + ["", ""])[:3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mount_point = Path(_unescape(left.split(" ")[4]))
        if fstype == "cgroup2":
            v2.append(mount_point)
        else:
            for opt in options.split(","):
                if opt in _V1_CONTROLLERS:
                    v1.setdefault(opt, mount_point)
    preferred = [p for p in _USUAL_V2 if p in v2]
    return CgroupLayout(v1=v1, v2=(preferred or v2 or [None])[0])


_layout: CgroupLayout | None = None


def detect_layout(refresh: bool = False) -> CgroupLayout:
    """This host's cgroup mounts, read from mountinfo once per process (``refresh``: again).

    A start used to ask 4-5 times (cleanup, the attach primer, the supervisor's checks and its
    cgroup), ~0.1 ms each. Cgroup hierarchies are mounted at boot and stay where they are; a
    forked supervisor shares its parent's mount namespace, hence its answer, and no process asks
    after making a mount namespace of its own (the init). A reading that failed is not kept.
    """
    global _layout
    if _layout is None or refresh:
        try:
            _layout = parse_mountinfo(MOUNTINFO.read_text())
        except OSError:
            return CgroupLayout()
    return _layout


def open_cgroup(container_id: str, limits: Limits) -> Cgroup:
    """The cgroup of ``container_id`` with the backend this host needs (nothing made yet).

    A host with any v1 controller mounted gets the v1 backend (which also uses the hybrid
    cgroup2 mount, when there is one, for ``cgroup.kill`` and ``cgroup.events``); a host with only
    cgroup2 gets the v2 backend.
    """
    layout = detect_layout()
    if any(c in layout.v1 for c in ("memory", "cpu", "cpuacct", "pids")):
        return V1Cgroup(container_id, limits, layout.v1, layout.v2)
    if layout.v2 is not None:
        return V2Cgroup(container_id, limits, layout.v2)
    raise UnsupportedFeature(
        f"no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in {MOUNTINFO})",
        container_id,
    )


def cgroups_available() -> bool:
    """Whether this process can create container cgroups (root, writable cgroupfs).

    False for rootless engines and read-only /sys/fs/cgroup (an unprivileged container): the
    runtime then runs containers without a cgroup, and refuses limits with UnsupportedFeature.
    """
    if os.geteuid() != 0:
        return False
    layout = detect_layout()
    if any(c in layout.v1 for c in ("memory", "cpu", "cpuacct", "pids")):
        used = [layout.v1[c] for c in ("memory", "cpu", "cpuacct", "pids") if c in layout.v1]
    elif layout.v2 is not None:
        used = [layout.v2]
    else:
        return False
    return all(os.access(p, os.W_OK) for p in used)


def leftover_container_ids() -> set[str]:
    """Container ids that have a cgroup on this host, on any hierarchy (crash cleanup)."""
    parent = parent_name()
    ids: set[str] = set()
    for mount in detect_layout().all_mounts:
        try:
            entries = list(os.scandir(mount / parent))
        except (FileNotFoundError, NotADirectoryError):
            continue
        ids.update(e.name for e in entries if e.is_dir(follow_symlinks=False))
    return ids


def remove_parent() -> list[Path]:
    """Remove the empty parent cgroup on every hierarchy (end of a test run, uninstall).

    Containers' cgroups must have been destroyed first: a parent that still has children is
    left in place, never emptied behind a container's back; those parents are returned.
    """
    parent = parent_name()
    kept: list[Path] = []
    for mount in detect_layout().all_mounts:
        path = mount / parent
        if not path.is_dir():
            continue
        if any(e.is_dir(follow_symlinks=False) for e in os.scandir(path)):
            kept.append(path)
        else:
            remove_tree(path)
    return kept


def prime_attach() -> None:
    """Get the kernel's slow part of a cgroup migration done now, in the background.

    Moving a process between cgroups takes a global percpu rw-semaphore for writing; after an
    idle period the first such write waits for an RCU grace period (measured here: 7-14 ms,
    against 0.1 ms for writes that follow soon after). A process that is about to start a
    container (the CLI: imports, image lookup, fork) rewrites its own pid into the cgroup it is
    already in — a migration that changes nothing — from a thread, so the supervisor's real
    attach a few milliseconds later finds the semaphore already switched.
    """
    if os.geteuid() != 0:
        return
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return
    layout = detect_layout()
    for line in lines:
        hierarchy, _sep, rest = line.partition(":")
        controllers, _sep, path = rest.partition(":")
        mount = layout.v2 if hierarchy == "0" else layout.v1.get(controllers.split(",")[0])
        if mount is not None and path.startswith("/"):
            procs = mount / path.lstrip("/") / "cgroup.procs"
            _thread.start_new_thread(_write_own_pid, (str(procs),))
            return


def _write_own_pid(procs: str) -> None:
    try:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    except OSError:
        pass  # only an optimisation
