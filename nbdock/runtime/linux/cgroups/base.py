"""The one cgroup interface the runtime talks to, and the file helpers both backends share.

A container's cgroup is ``<mount>/<parent>/<container_id>`` on every hierarchy it uses, where
``<parent>`` is ``nbdock`` (or ``$NBDOCK_CGROUP_PARENT``, so tests and parallel engines keep to
their own subtree). Naming by container id is what lets a restarted engine find and remove the
cgroups a crashed one left behind.

cgroupfs files are control files, not data: they are opened without ``O_CREAT`` (so a missing
controller file reads as "absent", not as "permission denied"), and every failure is mapped to
an ``NbdockError`` that names the controller and the path.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from nbdock.errors import InvalidArgument, RuntimeFailure, UnsupportedFeature
from nbdock.runtime._plain import Frozen

if TYPE_CHECKING:
    from nbdock.runtime.spec import Limits

PARENT_ENV = "NBDOCK_CGROUP_PARENT"
DEFAULT_PARENT = "nbdock"
# CFS period used for --cpus, as Docker does: quota = cpus * period.
CPU_PERIOD_US = 100_000
# The kernel refuses CFS quotas below 1 ms.
MIN_CPU_QUOTA_US = 1_000
# v1 reports "unlimited" as a huge page-rounded number (PAGE_COUNTER_MAX * PAGE_SIZE).
UNLIMITED_THRESHOLD = 1 << 62
# How long destroy() waits for killed processes to leave the cgroup before giving up.
EMPTY_TIMEOUT_S = 10.0

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


class CgroupStats(Frozen):
    """A point-in-time reading, shaped like the numbers ``docker stats`` shows.

    ``memory_bytes`` is usage minus inactive file cache (Docker's definition); it is 0 when the
    hierarchy has no memory controller. ``memory_limit_bytes`` is None when unlimited.
    """

    __slots__ = ("cpu_usage_ns", "memory_bytes", "memory_limit_bytes", "pids_current")
    cpu_usage_ns: int
    memory_bytes: int
    memory_limit_bytes: int | None
    pids_current: int

    def __init__(
        self, cpu_usage_ns: int, memory_bytes: int, memory_limit_bytes: int | None, pids_current: int
    ) -> None:
        self._set(
            cpu_usage_ns=cpu_usage_ns, memory_bytes=memory_bytes,
            memory_limit_bytes=memory_limit_bytes, pids_current=pids_current,
        )


@runtime_checkable
class Cgroup(Protocol):
    """What the runtime needs from a container's cgroup, whatever the host's cgroup version."""

    container_id: str

    def create(self) -> None:
        """Make the directories and apply the limits (before any process joins)."""

    def apply_limits(self, limits: Limits) -> None:
        """Set ``limits`` on a cgroup created without them (a pre-warmed container's), before
        the container's command runs; refuses a limit whose controller the cgroup lacks."""

    def add_process(self, pid: int) -> None:
        """Move ``pid`` in; the parent calls it before the child unshares CLONE_NEWCGROUP."""

    def kill_all(self) -> None:
        """Send SIGKILL to every process in the cgroup (and its sub-cgroups)."""

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer has killed a process of this cgroup."""

    def is_populated(self) -> bool:
        """Whether any process is still in the cgroup."""

    def stats(self) -> CgroupStats:
        """Current CPU, memory and pid usage."""

    def destroy(self) -> None:
        """Kill what is left, wait until empty, remove every directory; idempotent."""

    def paths(self) -> list[Path]:
        """The container's cgroup directories that exist now, one per hierarchy ([] if none)."""


# --------------------------------------------------------------------------- naming
def parent_name() -> str:
    """The parent cgroup name, ``nbdock`` unless ``$NBDOCK_CGROUP_PARENT`` says otherwise."""
    name = os.environ.get(PARENT_ENV) or DEFAULT_PARENT
    parts = name.strip("/").split("/")
    if not name.strip("/") or any(p in ("", ".", "..") for p in parts) or name.startswith("/"):
        raise InvalidArgument(
            f"invalid {PARENT_ENV} {name!r}", hint="use a relative name such as nbdock-test"
        )
    return name


def check_container_id(container_id: str) -> str:
    """A container id becomes a directory name: refuse anything that could leave the parent."""
    if container_id in ("", ".", "..") or "/" in container_id or "\0" in container_id:
        raise InvalidArgument(f"invalid container id for a cgroup name: {container_id!r}")
    return container_id


def cpu_quota_us(cpus: float) -> int:
    """CFS quota for ``cpus`` CPUs over ``CPU_PERIOD_US`` (0.5 -> 50000)."""
    return max(MIN_CPU_QUOTA_US, round(cpus * CPU_PERIOD_US))


def pids_value(pids: int) -> str:
    """Docker's ``--pids-limit``: a positive count, or -1 (any negative) for unlimited."""
    return "max" if pids < 0 else str(pids)


# --------------------------------------------------------------------------- file helpers
def write_control(path: Path, value: str, controller: str, container: str | None = None) -> None:
    """Write one value to a cgroup control file, mapping errno to a useful error."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnsupportedFeature(
            f"cgroup controller {controller!r} is not available: {path} does not exist",
            container,
        ) from None
    except OSError as exc:
        raise _os_failure(exc, path, value, controller, container) from None
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise _os_failure(exc, path, value, controller, container) from None
    finally:
        os.close(fd)


def _os_failure(
    exc: OSError, path: Path, value: str, controller: str, container: str | None
) -> RuntimeFailure:
    reason = exc.strerror or str(exc)
    if exc.errno in _DENIED:
        return UnsupportedFeature(
            f"cannot write {path} (cgroup controller {controller!r}): {reason}; cgroup limits "
            "need root and a writable cgroup filesystem",
            container,
        )
    if exc.errno == errno.ESRCH and path.name == "cgroup.procs":
        return RuntimeFailure(f"process {value} exited before it joined {path.parent}", container)
    return RuntimeFailure(f"writing {value!r} to {path} failed: {reason}", container)


def make_dir(path: Path, controller: str, container: str | None = None) -> None:
    """mkdir -p for a cgroup directory, with the same error mapping as writes."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in _DENIED or exc.errno == errno.ENOENT:
            raise UnsupportedFeature(
                f"cannot create cgroup {path} (controller {controller!r}): {exc.strerror or exc}",
                container,
            ) from None
        raise RuntimeFailure(
            f"cannot create cgroup {path}: {exc.strerror or exc}", container
        ) from None


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist (controller absent, cgroup removed)."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_int(path: Path) -> int | None:
    """An integer control file; ``max`` (unlimited) and absence both read as None."""
    text = read_text(path)
    if text is None or text.strip() in ("", "max"):
        return None
    return int(text.split()[0])


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed file such as ``memory.events`` or ``cpu.stat`` ("key value" lines)."""
    out: dict[str, int] = {}
    for line in (read_text(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def tree(path: Path) -> list[Path]:
    """``path`` and every sub-cgroup below it, deepest first (the order rmdir needs)."""
    if not path.is_dir():
        return []
    return [Path(root) for root, _dirs, _files in os.walk(path, topdown=False)]


def tree_pids(dirs: Iterable[Path]) -> set[int]:
    """Every pid in the given cgroups and their sub-cgroups."""
    pids: set[int] = set()
    for top in dirs:
        for d in tree(top):
            text = read_text(d / "cgroup.procs") or ""
            pids.update(int(p) for p in text.split())
    return pids


def signal_all(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` with a short, growing sleep; True once it holds, False on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def remove_tree(path: Path, container: str | None = None) -> None:
    """rmdir a cgroup and its sub-cgroups, bottom-up; a missing directory is not an error.

    rmdir can briefly fail with EBUSY right after the last task exits (the kernel unlinks the
    task from its cgroup a little after the process is reported gone), so it is retried.
    """
    for d in tree(path):

        def gone(d: Path = d) -> bool:
            try:
                d.rmdir()
            except FileNotFoundError:
                return True
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise RuntimeFailure(
                        f"cannot remove cgroup {d}: {exc.strerror}", container
                    ) from None
                return False
            return True

        if not wait_for(gone, 2.0):
            raise RuntimeFailure(f"cannot remove cgroup {d}: still busy", container)
