"""User namespaces for rootless containers: who is mapped to whom, and getting the maps written.

Not root, the engine cannot create PID, mount or network namespaces, mount anything, or set up a
cgroup. A user namespace grants all of that *inside* it: the caller's uid is mapped to root in the
container, and the process gets every capability over the namespaces it then creates, never over
the host's. Two mappings exist:

- the self map ``0 UID 1`` (and ``0 GID 1``), which any user may write for itself once
  ``setgroups`` is denied: only root exists in the container, files it writes belong to the caller;
- with ``/etc/subuid`` and ``/etc/subgid`` ranges for the caller and the setuid helpers
  ``newuidmap``/``newgidmap`` (Debian package ``uidmap``): ``0 UID 1`` plus ``1 START COUNT``, so
  ``-u 1000`` works inside. Only a process in the *parent* namespace can run the helpers (a setuid
  binary loses its power inside a namespace where host root is unmapped), so a helper process is
  forked before the namespace is created and writes the maps of its parent.

``$NBDOCK_ROOTLESS_SUBIDS=0`` forces the self map even when ranges are configured.
"""

from __future__ import annotations

import os
import pwd
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from nbdock.errors import RuntimeFailure, UnsupportedFeature
from nbdock.runtime._plain import Frozen
from nbdock.runtime.linux import libc

if TYPE_CHECKING:  # imported where used: a root `nbdock run` needs neither
    import subprocess

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")
SUBIDS_ENV = "NBDOCK_ROOTLESS_SUBIDS"
# The kernel accepts at most 340 lines in a map (5 before Linux 4.15); keep far below.
_MAX_RANGES = 64


class IdRange(Frozen):
    """``count`` ids from ``inside`` in the namespace are the ids from ``outside`` on the host."""

    __slots__ = ("inside", "outside", "count")
    inside: int
    outside: int
    count: int

    def __init__(self, inside: int, outside: int, count: int) -> None:
        self._set(inside=inside, outside=outside, count=count)

    def line(self) -> str:
        return f"{self.inside} {self.outside} {self.count}"


class IdMapping(Frozen):
    """The uid and gid maps of one container's user namespace."""

    __slots__ = ("uids", "gids")
    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    def __init__(self, uids: tuple[IdRange, ...], gids: tuple[IdRange, ...]) -> None:
        self._set(uids=uids, gids=gids)

    @property
    def is_self_map(self) -> bool:
        """Only the caller's own ids: writable without privilege, with setgroups denied."""
        return all(len(m) == 1 and m[0].count == 1 for m in (self.uids, self.gids))

    def uid_map(self) -> str:
        return "".join(r.line() + "\n" for r in self.uids)

    def gid_map(self) -> str:
        return "".join(r.line() + "\n" for r in self.gids)

    def maps_uid(self, uid: int) -> bool:
        return any(r.inside <= uid < r.inside + r.count for r in self.uids)


def is_rootless() -> bool:
    """Whether containers must be made inside a user namespace (the engine is not root)."""
    return os.geteuid() != 0


def parse_subids(text: str, user: str, uid: int) -> list[tuple[int, int]]:
    """(start, count) ranges of ``user`` in a subuid/subgid file; lines may name the numeric id."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or line.lstrip().startswith("#"):
            continue
        owner, start, count = fields
        if owner not in (user, str(uid)) or not (start.isdigit() and count.isdigit()):
            continue
        if int(count) > 0:
            ranges.append((int(start), int(count)))
    return ranges[:_MAX_RANGES]


def _with_subids(own: int, ranges: list[tuple[int, int]]) -> tuple[IdRange, ...]:
    """Root is the caller; ids 1.. follow the subordinate ranges in the file's order."""
    result = [IdRange(0, own, 1)]
    inside = 1
    for start, count in ranges:
        result.append(IdRange(inside, start, count))
        inside += count
    return tuple(result)


def self_mapping(uid: int, gid: int) -> IdMapping:
    return IdMapping((IdRange(0, uid, 1),), (IdRange(0, gid, 1),))


def mapping_for(
    uid: int, gid: int, user: str, subuid_text: str, subgid_text: str, helpers: bool
) -> IdMapping:
    """The widest mapping available: subordinate ranges when both files and helpers allow it."""
    uid_ranges = parse_subids(subuid_text, user, uid)
    gid_ranges = parse_subids(subgid_text, user, uid)
    if not (helpers and uid_ranges and gid_ranges):
        return self_mapping(uid, gid)
    return IdMapping(_with_subids(uid, uid_ranges), _with_subids(gid, gid_ranges))


def _helper(name: str) -> str | None:
    import shutil

    return shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)), None
    )


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def current_mapping() -> IdMapping:
    """The mapping for the calling user on this host (read at each container start)."""
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    wanted = os.environ.get(SUBIDS_ENV, "1") not in ("0", "no", "false")
    helpers = wanted and _helper("newuidmap") is not None and _helper("newgidmap") is not None
    if helpers:
        import subprocess  # noqa: F401 - loaded here so the forked supervisor inherits it

    return mapping_for(uid, gid, user, _read(SUBUID), _read(SUBGID), helpers)


# --------------------------------------------------------------------------- writing the maps
def _write_proc(pid: int | str, name: str, text: str) -> None:
    fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _start_helper(name: str, pid: int, ranges: tuple[IdRange, ...]) -> subprocess.Popen[str]:
    path = _helper(name)
    if path is None:
        raise UnsupportedFeature(f"{name} is missing (Debian package uidmap)")
    argv = [path, str(pid)] + [str(v) for r in ranges for v in (r.inside, r.outside, r.count)]
    import subprocess

    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, close_fds=True
    )


def _finish_helper(process: subprocess.Popen[str]) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeFailure(
            f"{' '.join(map(str, process.args))} failed: {stderr.strip() or process.returncode}"
        )


def write_maps(pid: int | str, mapping: IdMapping) -> None:
    """Write the maps of ``pid``'s (fresh, unmapped) user namespace from its parent namespace.

    The self map is written to /proc directly (setgroups must be denied first, or the kernel
    refuses an unprivileged gid map); root may write any map directly; everyone else needs the
    setuid helpers, which check the ranges against /etc/subuid and /etc/subgid themselves.
    """
    if mapping.is_self_map or os.geteuid() == 0:
        if mapping.is_self_map:
            _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, "uid_map", mapping.uid_map())
        _write_proc(pid, "gid_map", mapping.gid_map())
        return
    # The two helpers are independent: run them side by side (each costs a few ms of exec).
    uid_helper = _start_helper("newuidmap", int(pid), mapping.uids)
    try:
        gid_helper = _start_helper("newgidmap", int(pid), mapping.gids)
    finally:
        _finish_helper(uid_helper)
    _finish_helper(gid_helper)


def unshare_mapped(mapping: IdMapping, flags: int = 0) -> None:
    """Move the calling (single-threaded) process into a new user namespace, as root there.

    ``flags`` are created with it (e.g. ``CLONE_NEWPID``), owned by the new namespace. On return
    the process has uid and gid 0 and every capability inside, none outside.
    """
    if mapping.is_self_map:
        libc.unshare(libc.CLONE_NEWUSER | flags)
        write_maps("self", mapping)
        return
    # Fork the helper first: it must stay in the parent namespace to run newuidmap for us.
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    result_r, result_w = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    helper = os.fork()
    if helper == 0:
        # Drop the parent's ends, or a parent that dies first would leave us reading forever.
        os.close(go_w)
        os.close(result_r)
        _helper_main(parent, mapping, go_r, result_w)
    os.close(go_r)
    os.close(result_w)
    failure = b""
    try:
        libc.unshare(libc.CLONE_NEWUSER | flags)
        os.write(go_w, b"1")
        failure = _read_fd(result_r)
    finally:
        os.close(go_w)
        os.close(result_r)
        os.waitpid(helper, 0)
    if failure:
        raise RuntimeFailure(
            f"cannot map ids into the user namespace: {failure.decode()} (set "
            f"{SUBIDS_ENV}=0 to map only your own uid and gid, without newuidmap)"
        )


def _helper_main(parent: int, mapping: IdMapping, go_fd: int, result_fd: int) -> None:
    code = 0
    try:
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.read(go_fd, 1) == b"1":
            write_maps(parent, mapping)
        else:
            os.write(result_fd, b"the process to map went away")
    except BaseException as error:  # noqa: BLE001 - a forked helper must never unwind
        try:
            os.write(result_fd, str(error).encode() or repr(error).encode())
        except OSError:
            pass
        code = 1
    finally:
        os._exit(code)


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- helpers for others
def same_user_namespace(pid: int) -> bool:
    """Whether ``pid`` shares our user namespace (setns into one's own namespace is EINVAL)."""
    mine = os.stat("/proc/self/ns/user")
    theirs = os.stat(f"/proc/{pid}/ns/user")
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def remove_tree(path: Path) -> None:
    """``rm -rf`` a container's files even where the caller alone may not.

    A rootless container writes files as root or as subordinate ids, with any mode (a ``0500``
    directory, a file owned by host uid 100999): the caller cannot delete those on the host, but
    root of a user namespace with the same mapping can, so the second pass runs in one.
    """
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path) or not is_rootless():
        return
    mapping = current_mapping()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            unshare_mapped(mapping)
            shutil.rmtree(path, ignore_errors=True)
            code = 0
        finally:
            os._exit(code)
    os.waitpid(child, 0)
