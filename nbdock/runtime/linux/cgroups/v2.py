"""cgroup v2 backend, for pure-v2 hosts (``/sys/fs/cgroup`` is cgroup2).

v2 is one tree. Two rules shape this module: a controller works in a cgroup only when every
ancestor lists it in ``cgroup.subtree_control``, and a cgroup that hands controllers down may
hold no processes itself ("no internal processes"). So the mount root and ``<parent>`` enable
``cpu memory pids`` for their children and hold no container processes; each container is a
leaf ``<parent>/<id>`` holding the limits and the processes.

The mount point is a constructor parameter so the backend also runs on a hybrid host's
controller-less ``/sys/fs/cgroup/unified``. There, everything not owned by a controller works
for real (mkdir, ``cgroup.procs``, ``cgroup.kill``, ``cgroup.freeze``, ``cgroup.events``,
``cpu.stat`` usage) and asking for a limit raises UnsupportedFeature. What such a host cannot
exercise: ``memory.max``, ``memory.swap.max``, ``memory.events`` oom_kill, ``memory.current``,
``memory.stat``, ``cpu.max``, ``pids.max``, ``pids.current`` and enabling controllers in
``cgroup.subtree_control``.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from nbdock.errors import NbdockError, RuntimeFailure, UnsupportedFeature
from nbdock.runtime.linux.cgroups.base import (
    CPU_PERIOD_US,
    EMPTY_TIMEOUT_S,
    CgroupStats,
    check_container_id,
    cpu_quota_us,
    make_dir,
    parent_name,
    pids_value,
    read_int,
    read_keyed,
    read_text,
    remove_tree,
    signal_all,
    tree_pids,
    wait_for,
    write_control,
)
from nbdock.runtime.spec import Limits

# Controllers a container leaf gets whenever the host offers them (stats need them too).
WANTED = ("cpu", "memory", "pids")
_FLAG = {"memory": "--memory", "cpu": "--cpus", "pids": "--pids-limit"}
_KILL_TIMEOUT_S = 5.0


class V2Cgroup:
    """A container's cgroup ``<mount>/<parent>/<container_id>`` on a cgroup2 hierarchy."""

    def __init__(
        self, container_id: str, limits: Limits, mount: Path, parent: str | None = None
    ) -> None:
        self.container_id = check_container_id(container_id)
        self.limits = limits
        self._mount = mount
        self._parent_dir = mount / (parent or parent_name())
        self._dir = self._parent_dir / self.container_id

    def _required(self) -> list[str]:
        lim = self.limits
        wanted = [("memory", lim.memory_bytes), ("cpu", lim.cpus), ("pids", lim.pids)]
        return [controller for controller, value in wanted if value is not None]

    # ------------------------------------------------------------------ lifecycle
    def create(self) -> None:
        available = set((read_text(self._mount / "cgroup.controllers") or "").split())
        for controller in self._required():
            if controller not in available:
                listed = " ".join(sorted(available)) or "nothing"
                raise UnsupportedFeature(
                    f"cannot apply {_FLAG[controller]}: cgroup v2 controller {controller!r} is "
                    f"not available on {self._mount} (its cgroup.controllers lists {listed})",
                    self.container_id,
                )
        make_dir(self._parent_dir, "cgroup2", self.container_id)
        offered = [c for c in WANTED if c in available]
        self._enable(self._mount, offered)
        self._enable(self._parent_dir, offered)
        fresh = not self._dir.exists()
        make_dir(self._dir, "cgroup2", self.container_id)
        try:
            self._apply_limits()
        except BaseException:
            if fresh:
                try:
                    remove_tree(self._dir, self.container_id)
                except NbdockError:
                    pass
            raise

    def _enable(self, level: Path, controllers: list[str]) -> None:
        """Hand ``controllers`` down from ``level`` to its children (only the missing ones).

        A controller the limits do not need is best-effort: failing to enable it only costs
        that part of ``stats()``.
        """
        control = level / "cgroup.subtree_control"
        enabled = set((read_text(control) or "").split())
        required = self._required()
        for controller in controllers:
            if controller in enabled:
                continue
            try:
                write_control(control, f"+{controller}", controller, self.container_id)
            except RuntimeFailure as exc:
                if controller not in required:
                    continue
                busy = (
                    ""
                    if not _is_busy(exc)
                    else (f"; {level} holds processes, and cgroup v2 puts processes only in leaves")
                )
                raise UnsupportedFeature(
                    f"cannot enable cgroup v2 controller {controller!r} in {control}: {exc}{busy}",
                    self.container_id,
                ) from None

    def _apply_limits(self) -> None:
        lim, cid = self.limits, self.container_id
        if lim.memory_bytes is not None:
            write_control(self._dir / "memory.max", str(lim.memory_bytes), "memory", cid)
            # memory.swap.max counts swap alone (v1's memsw counted memory+swap): 0 = no swap.
            # The file is absent without swap accounting; then swap is not limited (as Docker).
            swap = self._dir / "memory.swap.max"
            if swap.exists():
                write_control(swap, "0", "memory", cid)
        if lim.cpus is not None:
            value = f"{cpu_quota_us(lim.cpus)} {CPU_PERIOD_US}"
            write_control(self._dir / "cpu.max", value, "cpu", cid)
        if lim.pids is not None:
            write_control(self._dir / "pids.max", pids_value(lim.pids), "pids", cid)

    def apply_limits(self, limits: Limits) -> None:
        self.limits = limits
        enabled = set((read_text(self._parent_dir / "cgroup.subtree_control") or "").split())
        for controller in self._required():
            if controller not in enabled:
                raise UnsupportedFeature(
                    f"cannot apply {_FLAG[controller]} to cgroup {self.container_id}: controller "
                    f"{controller!r} is not enabled in {self._parent_dir}", self.container_id,
                )
        self._apply_limits()

    def add_process(self, pid: int) -> None:
        write_control(self._dir / "cgroup.procs", str(pid), "cgroup2", self.container_id)

    def kill_all(self) -> None:
        """One write to ``cgroup.kill`` (Linux 5.14+), else freeze-and-kill."""
        if not self._dir.is_dir():
            return
        kill = self._dir / "cgroup.kill"
        if kill.exists():
            write_control(kill, "1", "cgroup2", self.container_id)
        else:
            freeze_and_kill(self._dir, self.container_id)

    def destroy(self) -> None:
        if self._dir.is_dir():
            self.kill_all()
            if not wait_for(lambda: not self.is_populated(), EMPTY_TIMEOUT_S):
                raise RuntimeFailure(
                    f"cgroup {self._dir} still holds {sorted(tree_pids([self._dir]))} "
                    f"{EMPTY_TIMEOUT_S:.0f}s after SIGKILL",
                    self.container_id,
                )
        remove_tree(self._dir, self.container_id)

    # ------------------------------------------------------------------ queries
    def is_populated(self) -> bool:
        return read_keyed(self._dir / "cgroup.events").get("populated", 0) == 1

    def oom_killed(self) -> bool:
        return read_keyed(self._dir / "memory.events").get("oom_kill", 0) > 0

    def stats(self) -> CgroupStats:
        usage_usec = read_keyed(self._dir / "cpu.stat").get("usage_usec", 0)
        current = read_int(self._dir / "memory.current")
        memory = 0
        if current is not None:
            inactive = read_keyed(self._dir / "memory.stat").get("inactive_file", 0)
            memory = max(0, current - inactive)
        pids = read_int(self._dir / "pids.current")
        if pids is None:
            pids = len(tree_pids([self._dir]))
        return CgroupStats(
            cpu_usage_ns=usage_usec * 1000,
            memory_bytes=memory,
            memory_limit_bytes=read_int(self._dir / "memory.max"),
            pids_current=pids,
        )

    def paths(self) -> list[Path]:
        return [self._dir] if self._dir.is_dir() else []


def _is_busy(exc: RuntimeFailure) -> bool:
    return os.strerror(errno.EBUSY) in str(exc)


def freeze_and_kill(path: Path, container: str | None = None) -> None:
    """Kill every process of a cgroup2 directory without ``cgroup.kill`` (kernels < 5.14).

    ``cgroup.freeze`` (5.2+) stops forks while the pids are read; SIGKILL reaches frozen tasks
    in v2, and the thaw afterwards lets anything that raced the freeze run into the next pass.
    """
    freeze = path / "cgroup.freeze"
    can_freeze = freeze.exists()
    deadline = time.monotonic() + _KILL_TIMEOUT_S
    while True:
        if can_freeze:
            write_control(freeze, "1", "cgroup2", container)
            wait_for(lambda: read_keyed(path / "cgroup.events").get("frozen", 0) == 1, 1.0)
        pids = tree_pids([path])
        signal_all(pids)
        if can_freeze:
            write_control(freeze, "0", "cgroup2", container)
        if not pids or wait_for(lambda: not tree_pids([path]), 0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeFailure(
                f"processes {sorted(tree_pids([path]))} survive SIGKILL in {path}", container
            )
