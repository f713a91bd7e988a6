"""Pre-warmed containers: a PID 1 with its namespaces and cgroup made before anyone asks for one.

Why: most of a container start does not depend on which container it is — spawning the init,
creating the PID, mount, UTS, IPC, network and cgroup namespaces, bringing ``lo`` up, creating
the cgroup and moving the init into it (on cgroup v1, after an idle spell, the kernel waits for
an RCU grace period there). A notebook re-runs cells, so the next start is likely; the fork
server (``forkserver.py``) keeps one such container per kind ready and, when a start fits, hands
it the container's directory instead of starting from nothing. Only the part that is the
container's own is left on the caller's path: limits, the overlay root, pivot_root, masks,
hostname, user, capabilities, seccomp, exec.

Isolation is the same as for a direct start (the same ``nbdock-init``, the same order); what
differs is only *when* each step runs: the init gets the first part of its plan (namespaces)
when it is made and the rest when a container is assigned. The cgroup, made before the
container has an id, keeps its ``pool-*`` name and is recorded in the container's state
(``State.cgroup``).

An entry is a thread of the fork server (like the supervision of a direct start,
``supervisor.launch_in_thread``) that made the init and waits on its mailbox; once assigned, it
supervises that container. A waiting entry costs the sleeping init (a 0.7 MB C program, made at
idle CPU priority), a network namespace and an empty cgroup. The fork server retires its entries
when its caller goes away (each kills its init and removes its cgroup); if the server is
SIGKILLed, its inits die with it and the next engine start removes their empty cgroups.
``NBDOCK_POOL=0`` turns pre-warming off.
"""

from __future__ import annotations

import os
import queue
import threading
import traceback
from pathlib import Path

from nbdock.errors import RuntimeFailure
from nbdock.runtime import init, trace
from nbdock.runtime.init_process import InitProcess
from nbdock.runtime.linux.cgroups import Cgroup, cgroups_available, open_cgroup, parent_name
from nbdock.runtime.plan import (
    ContainerPaths,
    make_plan,
    pool_cgroup_name,
    unshare_flags,
    unshare_flags_for,
)
from nbdock.runtime.spec import ContainerSpec, Limits
from nbdock.runtime.supervisor import (
    ThreadResources,
    event_pipe,
    join_cgroup,
    new_pid_namespace,
    supervise_started,
)

POOL_ENV = "NBDOCK_POOL"

PoolKey = tuple[int, str]  # (namespaces the init creates, cgroup parent)


def enabled() -> bool:
    return os.environ.get(POOL_ENV, "1").lower() not in ("0", "no", "off", "false")


class _Entry:
    """One waiting container, as the fork server's main thread sees it."""

    __slots__ = ("mailbox", "events_r", "init_pid", "broken")

    def __init__(self, events_r: int) -> None:
        # The container's directory once assigned, or None to retire: read by the entry's thread.
        self.mailbox: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.events_r = events_r  # handed to the caller: the entry's event channel
        self.init_pid = 0  # set by the entry's thread once the init is spawned
        self.broken = False  # set by the entry's thread if making it failed

    def usable(self) -> bool:
        """Not broken, and its init not dead (someone removed its cgroup, killed it): a dead one
        stays waitable (WNOWAIT) for the entry's thread to reap."""
        if self.broken:
            return False
        if not self.init_pid:
            return True  # still being made: it serves once ready
        try:
            return os.waitid(os.P_PID, self.init_pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False


class Pool:
    """The fork server's side: at most one waiting entry per kind of container."""

    def __init__(self) -> None:
        self._entries: dict[PoolKey, _Entry] = {}
        # Root, writable cgroups: pre-warming needs a cgroup to put the init in before the
        # container exists. Rootless starts (a user namespace per container) are not pooled.
        self._possible = os.geteuid() == 0 and cgroups_available()

    def key_for(self, spec: ContainerSpec) -> PoolKey | None:
        """The kind of entry that fits ``spec``, or None when none can.

        ``--cpus`` needs the v1 ``cpu`` hierarchy, which an entry's cgroup does not join (a
        later move would pay the slow attach the pool exists to avoid): such starts go direct.
        """
        if spec.limits.cpus is not None:
            return None
        return self.key_for_network(spec.network)

    def key_for_network(self, network: str) -> PoolKey | None:
        if not (self._possible and enabled()):
            return None
        return (unshare_flags_for(network), parent_name())

    def assign(self, key: PoolKey, directory: str) -> int | None:
        """Give the waiting entry of ``key`` its container; its event fd, or None if none waits
        (or the one waiting is broken: the caller then starts directly).

        The caller's ``NBDOCK_*`` settings are already this process's (``adopt_caller_env``).
        """
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        if not entry.usable():
            entry.mailbox.put(None)
            os.close(entry.events_r)
            return None
        entry.mailbox.put(directory)
        return entry.events_r

    def refill(self, key: PoolKey) -> None:
        if key in self._entries or not enabled():
            return
        events_r, events_w = event_pipe()
        entry = _Entry(events_r)
        threading.Thread(
            target=_serve_entry, args=(entry, events_w, key[0], pool_cgroup_name()),
            name="nbdock-prewarm",
        ).start()
        self._entries[key] = entry

    def close(self) -> None:
        """Retire every waiting entry (each kills its init, removes its cgroup and ends)."""
        for entry in self._entries.values():
            entry.mailbox.put(None)
            os.close(entry.events_r)
        self._entries.clear()


# --------------------------------------------------------------------------- the entry itself
def _serve_entry(entry: _Entry, events_fd: int, flags: int, pool_cgroup: str) -> None:
    resources = ThreadResources(events_fd)
    try:
        _prepare_and_serve(entry, flags, pool_cgroup, resources)
    except BaseException:  # noqa: BLE001 - a thread's failure goes to the server's log
        traceback.print_exc()
    finally:
        resources.close()


def _prepare_and_serve(entry: _Entry, flags: int, pool_cgroup: str, resources: ThreadResources) -> None:
    # This thread's next child is PID 1 of a new PID namespace (unshare acts on the thread).
    child = cgroup = None
    try:
        new_pid_namespace(None)
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        try:
            # At idle CPU priority: a start in progress (often the one that emptied the pool)
            # keeps the CPUs; back to normal once a container is assigned.
            child = InitProcess(sync_r, init.isolation_part(flags), None, idle=True)
        finally:
            os.close(sync_r)
        entry.init_pid = child.pid
        try:
            cgroup = join_cgroup(pool_cgroup, Limits(), child.pid, sync_w)
        finally:
            os.close(sync_w)
        trace.mark("S pool entry ready")
    except Exception:  # noqa: BLE001 - nobody to tell yet: assign() sees it broken
        entry.broken = True
        traceback.print_exc()
    directory = entry.mailbox.get()
    trace.mark("S assigned")
    if directory is None or child is None or cgroup is None:  # retired, or broken
        if child is not None:
            child.discard()
        _destroy_quietly(cgroup if cgroup is not None else open_cgroup(pool_cgroup, Limits()))
        return
    _set_idle_priority(child.pid, False)
    sup = resources.supervision(ContainerPaths(Path(directory)))
    try:
        spec = ContainerSpec.from_json(sup.paths.spec.read_text())
        if unshare_flags(spec) != flags:
            raise RuntimeFailure("internal: a pre-warmed container of the wrong kind was assigned")
        cgroup.apply_limits(spec.limits)
        child.send_plan(init.container_part(make_plan(sup.paths, spec)))
        trace.mark("S plan sent")
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        child.discard()
        _destroy_quietly(cgroup)
        sup.fail(f"start: {error}", init.EXIT_SETUP_FAILED)
        return
    sup.record_supervisor(pool_cgroup)
    supervise_started(sup, child, cgroup)


def _set_idle_priority(pid: int, idle: bool) -> None:
    policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
    try:
        os.sched_setscheduler(pid, policy, os.sched_param(0))
    except OSError:
        pass


def _destroy_quietly(cgroup: Cgroup | None) -> None:
    if cgroup is None:
        return
    try:
        cgroup.destroy()
    except Exception:  # noqa: BLE001 - best effort; Runtime.cleanup removes abandoned cgroups
        pass
