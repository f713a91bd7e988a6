"""Pre-warmed containers: a supervisor and its PID 1 made before anyone asks for them.

Why: most of a container start does not depend on which container it is — forking the
supervisor and the init, creating the PID, mount, UTS, IPC, network and cgroup namespaces,
bringing ``lo`` up, creating the cgroup and moving the init into it (on cgroup v1 the kernel
waits for an RCU grace period there). A notebook re-runs cells, so the next start is likely;
the fork server (``forkserver.py``) keeps one such container per kind ready and, when a start
fits, hands it the container's directory instead of starting from nothing. Only the part that
is the container's own is left on the caller's path: limits, the overlay root, pivot_root,
masks, hostname, user, capabilities, seccomp, exec.

Isolation is the same as for a direct start (the same ``nbdock-init``, the same order); what
differs is only *when* each step runs: the init gets the first part of its plan (namespaces)
when it is made and the rest when a container is assigned. The cgroup, made before the
container has an id, keeps its ``pool-*`` name and is recorded in the container's state (``State.cgroup``).

A waiting entry costs two sleeping processes (``nbdock-prewarm``, ~11 MB PSS once pre-faulted,
and ``nbdock-init``, a 0.7 MB C program), a network namespace and an empty cgroup. It
leaves when the fork server does (its request pipe reaches EOF): it kills its init, removes its
cgroup and exits. ``NBDOCK_POOL=0`` turns pre-warming off.
"""

from __future__ import annotations

import json
import os
import select
from pathlib import Path
from typing import Any, NoReturn

from nbdock.errors import RuntimeFailure
from nbdock.runtime import init, trace
from nbdock.runtime.init_process import InitProcess
from nbdock.runtime.linux import libc, prefault
from nbdock.runtime.linux.cgroups import Cgroup, cgroups_available, open_cgroup, parent_name
from nbdock.runtime.plan import (
    ContainerPaths,
    adopt_caller_env,
    make_plan,
    pool_cgroup_name,
    unshare_flags,
    unshare_flags_for,
)
from nbdock.runtime.spec import ContainerSpec, Limits
from nbdock.runtime.supervisor import (
    Channel,
    Supervision,
    detach_from_caller,
    event_pipe,
    fork_detached,
    join_cgroup,
    new_pid_namespace,
    supervise_started,
)

POOL_ENV = "NBDOCK_POOL"

PoolKey = tuple[int, str]  # (namespaces the init creates, cgroup parent)


def enabled() -> bool:
    return os.environ.get(POOL_ENV, "1").lower() not in ("0", "no", "off", "false")


class _Entry:
    __slots__ = ("request_w", "events_r")

    def __init__(self, request_w: int, events_r: int) -> None:
        self.request_w = request_w  # the container's directory goes here, once
        self.events_r = events_r  # handed to the caller: the entry's event channel


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

    def assign(self, key: PoolKey, directory: str, env: dict[str, str]) -> int | None:
        """Give the waiting entry of ``key`` its container; its event fd, or None if none waits."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        request = json.dumps({"directory": directory, "env": env}).encode()
        try:
            os.write(entry.request_w, request)  # < PIPE_BUF: one atomic write
        except OSError:  # the entry died (its init was killed, its cgroup removed)
            os.close(entry.events_r)
            return None
        finally:
            os.close(entry.request_w)
        return entry.events_r

    def refill(self, key: PoolKey) -> None:
        if key in self._entries or not enabled():
            return
        events_r, events_w = event_pipe()
        request_r, request_w = os.pipe2(os.O_CLOEXEC)
        name = pool_cgroup_name()
        flags = key[0]
        fork_detached(lambda: _wait_for_container(events_w, request_r, flags, name))
        os.close(events_w)
        os.close(request_r)
        self._entries[key] = _Entry(request_w, events_r)

    def close(self) -> None:
        """Retire every waiting entry (each sees EOF, cleans up and exits)."""
        for entry in self._entries.values():
            os.close(entry.request_w)
            os.close(entry.events_r)
        self._entries.clear()


# --------------------------------------------------------------------------- the entry itself
def _wait_for_container(events_fd: int, request_fd: int, flags: int, cgroup_name: str) -> NoReturn:
    exit_code = 0
    try:
        detach_from_caller(events_fd, request_fd)
        libc.set_process_name("nbdock-prewarm")  # until a container is assigned
        # Preparing runs only on otherwise idle CPUs: a start in progress (often the one that
        # emptied the pool) keeps them. The init inherits this; both go back to normal at once
        # when a container is assigned.
        _set_idle_priority(0, True)
        exit_code = _prepare_and_serve(events_fd, request_fd, flags, cgroup_name)
    finally:
        os._exit(exit_code & 0xFF)


def _prepare_and_serve(events_fd: int, request_fd: int, flags: int, pool_cgroup: str) -> int:
    new_pid_namespace(None)
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    try:
        child = InitProcess(sync_r, init.isolation_part(flags), None)
    finally:
        os.close(sync_r)
    try:
        cgroup = join_cgroup(pool_cgroup, Limits(), child.pid, sync_w)
    except Exception:  # noqa: BLE001 - nobody to tell yet: the fork server finds us gone
        cgroup = None
    finally:
        os.close(sync_w)
    request = None
    if cgroup is not None:
        trace.mark("S pool entry joined its cgroup")
        prefault.populate_private_memory()  # while nobody waits (see prefault.py)
        trace.mark("S pool entry ready")
        request = _await_request(request_fd, child.error_r)
    trace.mark("S assigned")
    if request is None:  # retired, or the init died while waiting
        child.close_plan()
        child.kill()
        _destroy_quietly(cgroup if cgroup is not None else open_cgroup(pool_cgroup, Limits()))
        return 0
    _set_idle_priority(0, False)
    _set_idle_priority(child.pid, False)
    libc.set_process_name("nbdock-shim")
    adopt_caller_env(request["env"])
    sup = Supervision(ContainerPaths(Path(request["directory"])), Channel(events_fd))
    try:
        spec = ContainerSpec.from_json(sup.paths.spec.read_text())
        if unshare_flags(spec) != flags:
            raise RuntimeFailure("internal: a pre-warmed container of the wrong kind was assigned")
        assert cgroup is not None
        cgroup.apply_limits(spec.limits)
        child.send_plan(init.container_part(make_plan(sup.paths, spec)))
        trace.mark("S plan sent")
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        child.close_plan()
        child.kill()
        _destroy_quietly(cgroup)
        return sup.fail(f"start: {error}", init.EXIT_SETUP_FAILED)
    sup.record_supervisor(pool_cgroup)
    return supervise_started(sup, child, cgroup)


def _await_request(request_fd: int, init_error_fd: int) -> dict[str, Any] | None:
    """Sleep until the fork server assigns a container (its JSON) or gives up on us (None).

    The init's error pipe is watched too: it only becomes readable if the init died, and then
    this entry is useless.
    """
    poller = select.poll()
    poller.register(request_fd, select.POLLIN)
    poller.register(init_error_fd, select.POLLIN)
    while True:
        ready = dict(poller.poll())
        if init_error_fd in ready:
            return None
        if request_fd in ready:
            break
    chunks = []
    while chunk := os.read(request_fd, 1 << 16):
        chunks.append(chunk)
    os.close(request_fd)
    return json.loads(b"".join(chunks)) if chunks else None


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
