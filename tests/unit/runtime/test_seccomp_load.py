"""The filter in a real kernel: loaded in a forked child (never in pytest itself), then probed.

Each probe runs once before the filter is loaded, as a control, and once after, so an ``EPERM``
afterwards is the filter's doing and not the kernel's. The child reports through a pipe as JSON
and always leaves with ``os._exit``.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nbdock.errors import RuntimeFailure
from nbdock.runtime.linux.seccomp import SeccompFilter
from nbdock.runtime.spec import DEFAULT_CAPABILITIES
from tests.conftest import need
from tests.unit.runtime.seccomp_support import build

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

PR_SET_NO_NEW_PRIVS = 38
SIGCHLD = 17
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
ADDR_NO_RANDOMIZE = 0x0040000
AF_ALG, AF_VSOCK = 38, 40
# x86_64 syscall numbers
SYS = {"clone": 56, "personality": 135, "chroot": 161, "mount": 165, "umount2": 166,
       "keyctl": 250, "unshare": 272, "setns": 308, "bpf": 321, "clone3": 435}


def syscall(name: str, *args: int | bytes | None) -> int:
    """Raw syscall; returns the result, or ``-errno``."""
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(SYS[name]), *(
        ctypes.c_char_p(a) if isinstance(a, bytes) or a is None else ctypes.c_long(a)
        for a in args
    ))
    return -ctypes.get_errno() if result == -1 else result


def raw_clone(flags: int) -> int:
    """clone(2) used like fork; the child leaves at once. Returns 0 or ``-errno``."""
    pid = syscall("clone", flags, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
        return 0
    return pid


def socket_errno(family: int) -> int:
    kind = socket.SOCK_SEQPACKET if family == AF_ALG else socket.SOCK_STREAM
    try:
        socket.socket(family, kind).close()
    except OSError as exc:
        return -exc.errno
    return 0


def probes(scratch: Path) -> dict[str, int]:
    """Calls the filter must refuse, each as ``-errno`` (0 = it worked)."""
    missing = str(scratch / "no-such-dir").encode()
    return {
        "unshare(CLONE_NEWNS)": syscall("unshare", CLONE_NEWNS),
        "unshare(0)": syscall("unshare", 0),
        "mount": syscall("mount", b"none", missing, b"tmpfs", 0, None),
        "umount2": syscall("umount2", missing, 0),
        "setns": syscall("setns", -1, 0),
        "keyctl": min(syscall("keyctl", 0, -3, 0), 0),  # KEYCTL_GET_KEYRING_ID, session
        "bpf": syscall("bpf", 0, None, 0),
        "clone3": syscall("clone3", None, 0),
        "personality(ADDR_NO_RANDOMIZE)": min(syscall("personality", ADDR_NO_RANDOMIZE), 0),
        "socket(AF_VSOCK)": socket_errno(AF_VSOCK),
        "socket(AF_ALG)": socket_errno(AF_ALG),
    }


def still_works(scratch: Path, pid_before: int) -> dict[str, object]:
    """Ordinary things a containerized program does, after the filter is in place."""
    results: dict[str, object] = {"pid_matches": os.getpid() == pid_before}
    path = scratch / "data.txt"
    path.write_text("seccomp")
    results["file_io"] = path.read_text() == "seccomp" and path.stat().st_size == 7
    pid = os.fork()
    if pid == 0:
        # The grandchild inherits the filter.
        os._exit(0 if syscall("setns", -1, 0) == -1 else 3)
    results["fork_child_filtered"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(threading.get_native_id()))
    worker.start()
    worker.join()
    results["thread"] = len(seen) == 1 and seen[0] != threading.get_native_id()
    results["clone(SIGCHLD)"] = raw_clone(SIGCHLD)
    results["clone(CLONE_NEWUSER|SIGCHLD)"] = raw_clone(CLONE_NEWUSER | SIGCHLD)
    results["personality(query)"] = syscall("personality", 0xFFFFFFFF) >= 0
    results["socket(AF_INET)"] = socket_errno(socket.AF_INET)
    results["chroot(/)"] = syscall("chroot", b"/")
    results["exec_true"] = _run_true()
    status = Path("/proc/self/status").read_text()
    results["seccomp_mode"] = int(status.split("Seccomp:")[1].split()[0])
    return results


def _run_true() -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.execv("/bin/true", ["true"])
        finally:
            os._exit(127)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def in_child(body: Callable[[], dict]) -> dict:
    """Run ``body`` in a forked child and return what it reported."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            report = body()
        except BaseException as exc:  # report everything; never unwind into pytest
            report = {"exception": type(exc).__name__, "message": str(exc)}
        try:
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(b"".join(chunks))


def _seccomp_mode_of_pytest() -> int:
    return int(Path("/proc/self/status").read_text().split("Seccomp:")[1].split()[0])


@pytest.fixture
def default_filter(as_root: None) -> SeccompFilter:
    need(platform.machine() == "x86_64", "an x86_64 kernel")
    need(_seccomp_mode_of_pytest() == 0, "a test process not already under a seccomp filter")
    return build(DEFAULT_CAPABILITIES)


def test_loaded_filter_denies_and_allows(default_filter: SeccompFilter) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)

        def body() -> dict:
            before, pid = probes(scratch), os.getpid()
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            started = time.perf_counter()
            default_filter.load()
            load_ms = (time.perf_counter() - started) * 1000
            return {"before": before, "after": probes(scratch), "works": still_works(scratch, pid),
                    "load_ms": load_ms}

        report = in_child(body)
    assert "exception" not in report, report
    before, after, works = report["before"], report["after"], report["works"]

    # Controls: without the filter the kernel does not answer EPERM (we are root).
    for name, result in before.items():
        assert result != -1, f"{name} was already refused before the filter: {result}"
    expected_after = {name: -1 for name in before} | {"clone3": -38}
    assert after == expected_after
    assert works == {
        "pid_matches": True, "file_io": True, "fork_child_filtered": True, "thread": True,
        "clone(SIGCHLD)": 0, "clone(CLONE_NEWUSER|SIGCHLD)": -1, "personality(query)": True,
        "socket(AF_INET)": 0, "chroot(/)": 0, "exec_true": 0, "seccomp_mode": 2,
    }
    print(f"\nload() took {report['load_ms']:.3f} ms")


def test_load_without_no_new_privs_or_privilege_fails_clearly(
    default_filter: SeccompFilter,
) -> None:
    def body() -> dict:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)  # drops every capability; no_new_privs stays unset
        try:
            default_filter.load()
        except RuntimeFailure as exc:
            return {"error": str(exc)}
        return {"error": None}

    report = in_child(body)
    assert report["error"] is not None and "no_new_privs" in report["error"], report
