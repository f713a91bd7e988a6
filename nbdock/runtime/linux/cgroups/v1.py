"""cgroup v1 backend, for legacy and hybrid hosts.

v1 has one hierarchy per controller (or per group of co-mounted controllers such as
``cpu,cpuacct``), so a container's cgroup is one directory per hierarchy and a process joins
each of them. On a hybrid host the controller-less cgroup2 mount (``/sys/fs/cgroup/unified``)
gets a directory too: it is the cheapest way to kill everything (``cgroup.kill``) and to learn
that the cgroup emptied (``cgroup.events``). Without it, killing falls back to freezing the
cgroup (so nothing can fork while we look), signalling every pid in ``cgroup.procs``, thawing.

Creation sits on the container start path, so only what is needed is created: memory, cpuacct
and pids always (they feed ``stats()``), cpu only for a ``--cpus`` limit, freezer only when
there is no ``cgroup.kill`` to use instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from nbdock.errors import NbdockError, RuntimeFailure, UnsupportedFeature
from nbdock.runtime.linux.cgroups.base import (
    CPU_PERIOD_US,
    EMPTY_TIMEOUT_S,
    UNLIMITED_THRESHOLD,
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

UNIFIED = "unified"  # our label for the hybrid host's cgroup2 directory
_STATS_CONTROLLERS = ("memory", "cpuacct", "pids")
_FLAG = {"memory": "--memory", "cpu": "--cpus", "pids": "--pids-limit"}
_KILL_TIMEOUT_S = 5.0


class V1Cgroup:
    """A container's cgroup on a v1 (or hybrid) host.

    ``controllers`` maps each mounted v1 controller to its mount point (co-mounted controllers
    share one); ``unified`` is the hybrid cgroup2 mount, or None on a pure v1 host.
    """

    def __init__(
        self,
        container_id: str,
        limits: Limits,
        controllers: Mapping[str, Path],
        unified: Path | None = None,
        parent: str | None = None,
    ) -> None:
        self.container_id = check_container_id(container_id)
        self.limits = limits
        self._parent = parent or parent_name()
        self._mounts = dict(controllers)
        self._unified = unified / self._parent / self.container_id if unified else None

    # ------------------------------------------------------------------ layout
    def _dir(self, controller: str) -> Path | None:
        mount = self._mounts.get(controller)
        return mount / self._parent / self.container_id if mount else None

    def _candidates(self) -> list[tuple[str, Path]]:
        """Every directory this container could have, one per hierarchy (co-mounts deduped)."""
        seen: dict[Path, str] = {}
        for controller in self._mounts:
            path = self._dir(controller)
            if path is not None:
                seen.setdefault(path, controller)
        pairs = [(controller, path) for path, controller in seen.items()]
        return [(UNIFIED, self._unified), *pairs] if self._unified else pairs

    def _existing(self) -> list[tuple[str, Path]]:
        return [(c, p) for c, p in self._candidates() if p.is_dir()]

    def _required(self) -> list[str]:
        lim = self.limits
        wanted = [
            ("memory", lim.memory_bytes),
            ("cpu", lim.cpus),
            ("pids", lim.pids),
        ]
        return [controller for controller, value in wanted if value is not None]

    def _has_cgroup_kill(self) -> bool:
        return self._unified is not None and (self._unified / "cgroup.kill").exists()

    # ------------------------------------------------------------------ lifecycle
    def create(self) -> None:
        for controller in self._required():
            if controller not in self._mounts:
                raise UnsupportedFeature(
                    f"cannot apply {_FLAG[controller]}: cgroup v1 controller {controller!r} is "
                    "not mounted on this host (see /proc/self/mountinfo)",
                    self.container_id,
                )
        made: list[Path] = []
        try:
            if self._unified is not None:
                make_dir(self._unified, UNIFIED, self.container_id)
                made.append(self._unified)
            wanted = [*_STATS_CONTROLLERS, *self._required()]
            if not self._has_cgroup_kill():
                wanted.append("freezer")
            for controller in dict.fromkeys(wanted):
                path = self._dir(controller)
                if path is not None and path not in made:
                    make_dir(path, controller, self.container_id)
                    made.append(path)
            self._apply_limits()
        except BaseException:
            for path in made:
                try:
                    remove_tree(path, self.container_id)
                except NbdockError:
                    pass
            raise

    def _apply_limits(self) -> None:
        lim = self.limits
        if lim.memory_bytes is not None:
            self._set_memory(lim.memory_bytes)
        if lim.cpus is not None:
            cpu = self._dir("cpu")
            assert cpu is not None
            write_control(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US), "cpu", self.container_id)
            quota = str(cpu_quota_us(lim.cpus))
            write_control(cpu / "cpu.cfs_quota_us", quota, "cpu", self.container_id)
        if lim.pids is not None:
            pids = self._dir("pids")
            assert pids is not None
            write_control(pids / "pids.max", pids_value(lim.pids), "pids", self.container_id)

    def _set_memory(self, limit: int) -> None:
        """memory.limit_in_bytes, and memsw (memory+swap) at the same value: no swap at all.

        The kernel keeps memsw >= memory at every moment, so raising a limit widens memsw
        first and lowering one narrows memory first (a fresh cgroup is unlimited: lowering).
        memsw exists only with swap accounting (``swapaccount=1``); without it, swap is simply
        not limited, as with Docker.
        """
        mem = self._dir("memory")
        assert mem is not None
        memory_file = mem / "memory.limit_in_bytes"
        memsw_file = mem / "memory.memsw.limit_in_bytes"
        order = [memory_file]
        if memsw_file.exists():
            current = read_int(memory_file)
            raising = current is not None and limit > current
            order = [memsw_file, memory_file] if raising else [memory_file, memsw_file]
        for path in order:
            write_control(path, str(limit), "memory", self.container_id)

    def apply_limits(self, limits: Limits) -> None:
        self.limits = limits
        for controller in self._required():
            path = self._dir(controller)
            if path is None or not path.is_dir():
                raise UnsupportedFeature(
                    f"cannot apply {_FLAG[controller]} to cgroup {self.container_id}: it was made "
                    f"without the {controller!r} controller", self.container_id,
                )
        self._apply_limits()

    def add_process(self, pid: int) -> None:
        for controller, path in self._existing():
            write_control(path / "cgroup.procs", str(pid), controller, self.container_id)

    def kill_all(self) -> None:
        """SIGKILL everything: one write to ``cgroup.kill`` when the hybrid mount has it.

        The fallback loops freeze → read pids → SIGKILL → thaw until the cgroup is empty; the
        freeze is what stops a fork bomb from outrunning the loop. Without a freezer hierarchy
        it still loops, which converges once forks fail at ``pids.max``.
        """
        if self._has_cgroup_kill():
            assert self._unified is not None
            write_control(self._unified / "cgroup.kill", "1", UNIFIED, self.container_id)
            self._thaw()  # a freezer left FROZEN (crash mid-kill) would keep them from dying
            return
        dirs = [path for _c, path in self._existing()]
        deadline = time.monotonic() + _KILL_TIMEOUT_S
        while True:
            self._freeze()
            pids = tree_pids(dirs)
            signal_all(pids)
            self._thaw()
            if not pids or wait_for(lambda: not tree_pids(dirs), 0.2):
                return
            if time.monotonic() > deadline:
                raise RuntimeFailure(
                    f"processes {sorted(tree_pids(dirs))} survive SIGKILL in {dirs[0]}",
                    self.container_id,
                )

    def _freeze(self) -> None:
        freezer = self._dir("freezer")
        if freezer is None or not freezer.is_dir():
            return
        state = freezer / "freezer.state"
        write_control(state, "FROZEN", "freezer", self.container_id)
        # FREEZING can linger for tasks in uninterruptible sleep; we kill them anyway.
        wait_for(lambda: (read_text(state) or "").strip() == "FROZEN", 1.0)

    def _thaw(self) -> None:
        freezer = self._dir("freezer")
        state = freezer / "freezer.state" if freezer else None
        if state is not None and (read_text(state) or "THAWED").strip() != "THAWED":
            write_control(state, "THAWED", "freezer", self.container_id)

    def destroy(self) -> None:
        if self._existing():
            self.kill_all()
            if not wait_for(lambda: not self.is_populated(), EMPTY_TIMEOUT_S):
                dirs = [path for _c, path in self._existing()]
                raise RuntimeFailure(
                    f"cgroup of {self.container_id} still holds {sorted(tree_pids(dirs))} "
                    f"{EMPTY_TIMEOUT_S:.0f}s after SIGKILL",
                    self.container_id,
                )
        for _controller, path in self._candidates():
            remove_tree(path, self.container_id)

    # ------------------------------------------------------------------ queries
    def is_populated(self) -> bool:
        if self._unified is not None and self._unified.is_dir():
            return read_keyed(self._unified / "cgroup.events").get("populated", 0) == 1
        return bool(tree_pids(path for _c, path in self._existing()))

    def oom_killed(self) -> bool:
        mem = self._dir("memory")
        if mem is None:
            return False
        return read_keyed(mem / "memory.oom_control").get("oom_kill", 0) > 0

    def stats(self) -> CgroupStats:
        cpuacct, mem, pids = self._dir("cpuacct"), self._dir("memory"), self._dir("pids")
        cpu_ns = (read_int(cpuacct / "cpuacct.usage") if cpuacct else None) or 0
        memory = limit = None
        if mem is not None:
            usage = read_int(mem / "memory.usage_in_bytes") or 0
            inactive = read_keyed(mem / "memory.stat").get("total_inactive_file", 0)
            memory = max(0, usage - inactive)
            limit = read_int(mem / "memory.limit_in_bytes")
        current = read_int(pids / "pids.current") if pids else None
        if current is None:
            current = len(tree_pids(path for _c, path in self._existing()))
        return CgroupStats(
            cpu_usage_ns=cpu_ns,
            memory_bytes=memory or 0,
            memory_limit_bytes=limit if limit is not None and limit < UNLIMITED_THRESHOLD else None,
            pids_current=current,
        )

    def paths(self) -> list[Path]:
        return [path for _c, path in self._existing()]
