"""The runtime's front door: create, start, wait, signal, stop, remove, logs, list, cleanup.

Every method works from any process, at any time: the state of a container lives on disk and in
the kernel, not in this object, so a CLI in a terminal can stop a container that a notebook kernel
started, and an engine restarted after SIGKILL finds and clears what the old one left.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from nbdock.errors import Conflict, ContainerNotFound, InvalidArgument
from nbdock.runtime import logs, state, trace
from nbdock.runtime.attachment import Attachment
from nbdock.runtime.exec import ExecRequest, exec_in_container
from nbdock.runtime.linux import libc
from nbdock.runtime.linux.cgroups import (
    Cgroup,
    CgroupStats,
    cgroups_available,
    leftover_container_ids,
    open_cgroup,
    prime_attach,
)
from nbdock.runtime.linux.userns import remove_tree
from nbdock.runtime.names import NameIndex
from nbdock.runtime.plan import ContainerPaths, check_supported, pool_owner_gone
from nbdock.runtime.spec import ContainerSpec, Limits, valid_name, validate
from nbdock.runtime.supervisor import launch

if TYPE_CHECKING:  # imported where used: the CLI (NBDOCK_FORKSERVER=never) runs without it
    from nbdock.runtime.forkserver import ForkServer


# The fork server's stderr, beside the containers (dot names are not containers).
FORKSERVER_LOG = ".forkserver.log"


class Runtime:
    """Containers under ``root`` (one directory per container id)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._forkserver: ForkServer | None = None
        self.names = NameIndex(root, lambda: ((s.name, s.id) for s in self.list()))

    def _launch(self, container_id: str) -> int:
        """Start through the fork server when it pays, else fork the supervisor from here.

        ``NBDOCK_FORKSERVER=never`` (the CLI: one start per process) always forks from here;
        ``always``, or a big or threaded caller (a notebook kernel), waits for the server. Other
        callers (``auto``) use it once it is up and start it in the background on their first
        start: from the second start on they get pre-warmed containers (``pool.py``).
        """
        choice = os.environ.get("NBDOCK_FORKSERVER", "auto")
        paths = self.paths(container_id)
        if choice != "never":
            from nbdock.runtime.forkserver import ForkServer, caller_is_heavy

            if self._forkserver is None:
                self._forkserver = ForkServer(self.root / FORKSERVER_LOG)
            server = self._forkserver
            if choice == "always" or caller_is_heavy() or server.ready():
                return server.launch(paths)
            server.start()
        return launch(paths, self.spec(container_id))

    def prewarm(self, network: str = "none") -> None:
        """Get a pre-warmed container ready now (``pool.py``), e.g. when a notebook loads nbdock,
        so that even the first start is fast. Starts the fork server; a no-op with
        ``NBDOCK_FORKSERVER=never`` or ``NBDOCK_POOL=0``."""
        if os.environ.get("NBDOCK_FORKSERVER", "auto") == "never":
            return
        from nbdock.runtime.forkserver import ForkServer

        if self._forkserver is None:
            self._forkserver = ForkServer(self.root / FORKSERVER_LOG)
        self._forkserver.prewarm(network)

    def close(self) -> None:
        """Stop this runtime's fork server (and its pre-warmed containers); containers stay."""
        if self._forkserver is not None:
            self._forkserver.close()
            self._forkserver = None

    # ------------------------------------------------------------------ lookup
    def paths(self, container_id: str) -> ContainerPaths:
        return ContainerPaths(self.root / container_id)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def ids(self) -> list[str]:
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            # ".removing-ID": being deleted (a supervisor's --rm may still be at it), not listed
            if not entry.name.startswith(".") and entry.is_dir() and (entry / "state.json").exists()
        )

    def resolve(self, name_or_id: str) -> str:
        """A full id, a name, or a unique id prefix, as Docker accepts them."""
        name = name_or_id.lstrip("/")
        if name and not name.startswith(".") and (self.root / name / "state.json").exists():
            return name
        owner = self.names.owner(name) if valid_name(name) else None
        if owner is not None:
            return owner
        matches = []
        for container_id in self.ids():
            try:
                current = state.load(self.root / container_id)
            except (OSError, ValueError):
                continue
            if current.name == name:
                return container_id
            if container_id.startswith(name):
                matches.append(container_id)
        if len(matches) == 1 and name:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple containers match {name_or_id!r}; give more of the id")
        raise ContainerNotFound(name_or_id)

    def state(self, container_id: str) -> state.State:
        """The recorded state, corrected by the kernel's view (a dead supervisor means exited)."""
        directory = self.root / container_id
        try:
            current = state.load(directory)
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        if current.status == "running" and not state.is_alive(current.shim_pid, current.shim_start):
            # Re-read: the supervisor may have recorded the exit between our two looks.
            current = state.load(directory)
            if current.status == "running":
                current.status = "exited"
                current.exit_code = 137
                current.finished_at = state.now_iso()
                current.error = "supervisor was killed; the container died with it"
                state.save(directory, current)
        return current

    def spec(self, container_id: str) -> ContainerSpec:
        try:
            return ContainerSpec.from_json(self.paths(container_id).spec.read_text())
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None

    def list(self) -> list[state.State]:
        result = []
        for container_id in self.ids():
            try:
                result.append(self.state(container_id))
            except (ContainerNotFound, ValueError):
                continue
        return result

    # ------------------------------------------------------------------ lifecycle
    def create(self, spec: ContainerSpec, auto_remove: bool = False) -> state.State:
        validate(spec)
        check_supported(spec)  # refused before anything exists: no "Created" record left behind
        if not self._forkserver_ready():
            prime_attach()  # a direct start follows: get the cgroup move's slow part going now
        with self._lock():
            if spec.name:
                self.names.claim(spec.name, spec.id)
            paths = self.paths(spec.id)
            paths.directory.mkdir()
            for sub in (paths.rootfs, paths.upper, paths.work):
                sub.mkdir()
            paths.spec.write_text(spec.to_json())
            paths.log.touch()
            record = state.State(
                id=spec.id, name=spec.name, created=state.now_iso(), auto_remove=auto_remove
            )
            state.save(paths.directory, record)
        return record

    def start(self, container_id: str) -> Attachment:
        """Start the container; returns once its command was exec'd (or failed to be)."""
        current = self.state(container_id)
        if current.status == "running":
            raise Conflict(f"container {container_id[:12]} is already running")
        if current.status == "exited":
            current.transition("running")  # validates; the supervisor records the real status
        trace.mark("P start")
        attachment = Attachment(self._launch(container_id))
        trace.mark("P launched")
        event = attachment.wait_started()
        if event["event"] == "failed":
            attachment.exit_code = int(event["exit_code"])  # type: ignore[call-overload]
            attachment.error = str(event.get("message", ""))
        return attachment

    def kill(self, container_id: str, sig: int = signal.SIGKILL) -> None:
        current = self.state(container_id)
        if current.status != "running" or not state.is_alive(current.pid, current.pid_start):
            raise Conflict(f"container {container_id[:12]} is not running")
        os.kill(current.pid, sig)

    def wait(self, container_id: str, timeout: float | None = None) -> state.State:
        """Block until the container is no longer running; works from any process."""
        deadline = None if timeout is None else time.monotonic() + timeout
        current = self.state(container_id)
        while current.status in ("running",) or (
            current.status == "created" and current.shim_pid and
            state.is_alive(current.shim_pid, current.shim_start)
        ):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                break
            if current.status == "running" and state.is_alive(current.pid, current.pid_start):
                # The container's PID 1, not its supervisor: one supervisor process (the fork
                # server's) may supervise many containers and outlive this one.
                self._wait_for_pid(current.pid, current.pid_start, remaining)
            else:  # starting, or exited and being recorded: a few milliseconds
                time.sleep(min(_RECORD_POLL_S, remaining or _RECORD_POLL_S))
            current = self.state(container_id)
        return current

    @staticmethod
    def _wait_for_pid(pid: int, start: int, timeout: float | None) -> None:
        if not state.is_alive(pid, start):
            return
        try:
            fd = libc.pidfd_open(pid)
        except OSError:
            time.sleep(0.05)
            return
        try:
            if state.is_alive(pid, start):  # the pid could have been reused before pidfd_open
                select.select([fd], [], [], timeout)
        finally:
            os.close(fd)

    def stop(self, container_id: str, timeout: float = 10.0) -> state.State:
        """Docker's stop: the stop signal, then SIGKILL after ``timeout`` seconds."""
        current = self.state(container_id)
        if current.status != "running":
            return current
        spec = self.spec(container_id)
        try:
            os.kill(current.pid, spec.stop_signal)
        except ProcessLookupError:
            pass
        current = self.wait(container_id, timeout)
        if current.status == "running":
            try:
                os.kill(current.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            current = self.wait(container_id)
        return current

    def remove(self, container_id: str, force: bool = False) -> None:
        current = self.state(container_id)
        if current.status == "running":
            if not force:
                raise Conflict(
                    f"cannot remove running container {container_id[:12]}: stop it first "
                    "or use force (rm -f)"
                )
            try:
                self.kill(container_id)
            except Conflict:
                pass  # it exited between our look and the kill: its supervisor is recording it
            self.wait(container_id)
        with self._lock():
            self._purge(container_id, current.cgroup_name)
            self.names.release(current.name, container_id)

    def _forkserver_ready(self) -> bool:
        return self._forkserver is not None and self._forkserver.ready()

    def _purge(self, container_id: str, cgroup_name: str) -> None:
        if cgroups_available():
            open_cgroup(cgroup_name, Limits()).destroy()
        directory = self.root / container_id
        marker = self.root / f".removing-{container_id}"
        try:
            os.replace(directory, marker)  # atomic: the container vanishes from listings at once
        except FileNotFoundError:
            pass  # already gone (an auto-removing supervisor got there first)
        remove_tree(marker)  # rootless: files of subordinate ids need a pass in the user namespace

    def exec(
        self, container_id: str, request: ExecRequest, stdout_fd: int = 1, stderr_fd: int = 2
    ) -> int:
        return exec_in_container(
            self.state(container_id), self.spec(container_id), request, stdout_fd, stderr_fd
        )

    def stats(self, container_id: str) -> CgroupStats | None:
        current = self.state(container_id)
        if current.status != "running" or not cgroups_available():
            return None
        return open_cgroup(current.cgroup_name, Limits()).stats()

    # ------------------------------------------------------------------ output
    def logs(
        self, container_id: str, follow: bool = False, poll_interval: float = 0.05
    ) -> Iterator[logs.Record]:
        path = str(self.paths(container_id).log)
        offset = 0
        while True:
            records, offset = logs.read_log(path, offset)
            yield from records
            if not follow:
                return
            current = self.state(container_id)
            if current.status != "running":
                records, offset = logs.read_log(path, offset)
                yield from records
                return
            time.sleep(poll_interval)

    # ------------------------------------------------------------------ recovery
    def cleanup(self) -> list[str]:
        """Clear what crashed supervisors left: dead 'running' records, cgroups, half-removals.

        Only this root's containers are judged by their records. A cgroup no record here knows
        may belong to another engine root on the same host, so it is removed only when it is
        empty and has been for a while (a container elsewhere may be starting right now).
        """
        cleaned = []
        with os.scandir(self.root) as entries:  # not Path.glob: it compiles a regexp (~0.15 ms)
            removing = [entry.path for entry in entries if entry.name.startswith(".removing-")]
        for leftover in removing:
            remove_tree(Path(leftover))
        if not cgroups_available():  # rootless: no cgroups of ours to look after
            return cleaned
        known = self._cgroup_owners()
        for cgroup_name in leftover_container_ids():
            container_id = known.get(cgroup_name)
            if container_id is not None:
                try:
                    current = self.state(container_id)
                except (ContainerNotFound, ValueError):
                    continue
                if current.status == "running" or state.is_alive(current.shim_pid, current.shim_start):
                    continue
            elif not _removable(cgroup_name):
                continue
            open_cgroup(cgroup_name, Limits()).destroy()
            cleaned.append(container_id or cgroup_name)
        return cleaned

    def _cgroup_owners(self) -> dict[str, str]:
        """cgroup name -> container id for this root (pre-warmed containers' differ from ids)."""
        owners = {}
        for container_id in self.ids():
            try:
                owners[state.load(self.root / container_id).cgroup_name] = container_id
            except (OSError, ValueError, TypeError):
                owners[container_id] = container_id
        return owners


_ABANDONED_AFTER_SECONDS = 60.0
# wait(): how often to look at a container between its exit and its supervisor recording it.
_RECORD_POLL_S = 0.002


def _removable(cgroup_name: str) -> bool:
    """A cgroup no container of this root owns: empty, and its pre-warming fork server gone or
    untouched for a while (it may be another root's container starting right now)."""
    cgroup = open_cgroup(cgroup_name, Limits())
    if pool_owner_gone(cgroup_name):
        return not cgroup.is_populated()
    return _abandoned(cgroup)


def _abandoned(cgroup: Cgroup) -> bool:
    """An empty cgroup nobody has touched for a minute: safe to remove whoever made it."""
    if cgroup.is_populated():
        return False
    try:
        touched = max(path.stat().st_mtime for path in cgroup.paths())
    except (OSError, ValueError):
        return False
    return time.time() - touched > _ABANDONED_AFTER_SECONDS
