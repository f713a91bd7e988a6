"""Thin ctypes bindings for the syscalls Python 3.11 lacks (unshare, setns, mount, pivot_root, ...).

Loaded once at import: the container's child side must not open libraries after pivot_root, when
the host's /lib is gone. Every wrapper raises ``OSError`` with errno, like the ``os`` module does.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]

# clone/unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# x86_64 syscall numbers for calls glibc 2.36 does not wrap
_SYS_PIVOT_ROOT = 155
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_SYS_PIDFD_OPEN = 434
_SYS_CLOSE_RANGE = 436
CLOSE_RANGE_CLOEXEC = 4

FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
FSMOUNT_CLOEXEC = 1
FSOPEN_CLOEXEC = 1


def _check(result: int, what: str, path: str | None = None) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    result = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(result, f"mount {fstype or source} on {target}", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}", target)


def pivot_root(new_root: str, put_old: str) -> None:
    result = _libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old))
    _check(result, "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = [ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5)]
    return _check(_libc.prctl(ctypes.c_int(option), *args), f"prctl({option})")


PR_SET_NAME = 15


def set_process_name(name: str) -> None:
    """What ps and top show for this process (its ``comm``, 15 bytes at most): the helper
    processes are forks of a Python interpreter, and would all show as ``python``."""
    _libc.prctl(ctypes.c_int(PR_SET_NAME), ctypes.c_char_p(name.encode()[:15]), ctypes.c_ulong(0),
                ctypes.c_ulong(0), ctypes.c_ulong(0))


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    result = _libc.syscall(
        _SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)
    )
    _check(result, "close_range")


def pidfd_open(pid: int) -> int:
    return _check(_libc.syscall(_SYS_PIDFD_OPEN, ctypes.c_int(pid), ctypes.c_uint(0)), "pidfd_open")


# ----------------------------------------------------------------- the new mount API (5.2+)
def fsopen(fstype: str) -> int:
    return _check(_libc.syscall(_SYS_FSOPEN, _b(fstype), ctypes.c_uint(FSOPEN_CLOEXEC)), "fsopen")


def fsconfig_string(fd: int, key: str, value: str) -> None:
    result = _libc.syscall(
        _SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(FSCONFIG_SET_STRING), _b(key), _b(value),
        ctypes.c_int(0),
    )
    _check(result, f"fsconfig {key}={value}")


def fsconfig_flag(fd: int, key: str) -> None:
    result = _libc.syscall(
        _SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(FSCONFIG_SET_FLAG), _b(key), None,
        ctypes.c_int(0),
    )
    _check(result, f"fsconfig {key}")


def fsconfig_create(fd: int) -> None:
    result = _libc.syscall(
        _SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None,
        ctypes.c_int(0),
    )
    _check(result, "fsconfig create")


def fsmount(fd: int) -> int:
    result = _libc.syscall(
        _SYS_FSMOUNT, ctypes.c_int(fd), ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(0)
    )
    return _check(result, "fsmount")


def move_mount_to(mount_fd: int, target: str) -> None:
    AT_FDCWD = -100
    result = _libc.syscall(
        _SYS_MOVE_MOUNT, ctypes.c_int(mount_fd), b"", ctypes.c_int(AT_FDCWD), _b(target),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
    _check(result, f"move_mount to {target}", target)


# ----------------------------------------------------------------- capabilities
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_CAP_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for index in range(2):
        shift = 32 * index
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")
