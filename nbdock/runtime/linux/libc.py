"""Thin ctypes bindings for the syscalls Python 3.11 lacks (unshare, setns, prctl, close_range, ...).

The container's own setup (mounts, pivot_root, capabilities) is C (``runtime/native/``); what
is left here serves the supervisor, ``exec`` and the tests. Every wrapper raises ``OSError`` with
errno, like the ``os`` module does.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# clone/unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# x86_64 syscall numbers for calls glibc 2.36 does not wrap
_SYS_PIDFD_OPEN = 434
_SYS_CLOSE_RANGE = 436
CLOSE_RANGE_CLOEXEC = 4


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
