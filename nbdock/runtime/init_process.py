"""The container's PID 1 as its supervisor holds it: ``nbdock-init`` spawned with its pipes.

Kept apart from the supervisor because two supervisors use it: a direct start's (thread or
process, ``supervisor.py``) and a pre-warmed one's (``pool.py``), which sends the second part of
the plan only when a container is assigned.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from nbdock.runtime import init, logs, native


class InitProcess:
    """The container's PID 1 (``nbdock-init``, spawned) and the pipes we hold to it.

    ``first_part`` (namespaces) is written at once; ``rest`` (the container's own part of the
    plan) too when given, else later through ``send_plan`` — a pre-warmed init waits for it.
    """

    def __init__(
        self, sync_fd_for_child: int, first_part: bytes, rest: bytes | None, program: str = "",
        idle: bool = False,
    ) -> None:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        error_r, error_w = os.pipe2(os.O_CLOEXEC)
        plan_r, plan_w = os.pipe2(os.O_CLOEXEC)
        try:
            if idle:  # inherited by the child: this thread's policy, not the process's
                _set_thread_scheduler(os.SCHED_IDLE)
            try:
                pid = init.spawn(program or native.init_binary(), plan_r, sync_fd_for_child,
                                 error_w, out_w, err_w)
            finally:
                if idle:
                    _set_thread_scheduler(os.SCHED_OTHER)
        except BaseException:
            for fd in (out_r, error_r, err_r, plan_w):  # a supervision thread outlives them
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, error_w, plan_r):
                os.close(fd)
        self.pid, self.out_r, self.err_r, self.error_r = pid, out_r, err_r, error_r
        self.plan_w: int | None = plan_w
        if rest is None:
            self.send_plan(first_part, final=False)  # the rest when a container is assigned
        else:
            self.send_plan(first_part + rest)

    def send_plan(self, data: bytes, final: bool = True) -> None:
        """Write (part of) the plan; ``final`` closes the pipe, which is how the init knows it
        has all of it. A dead init (EPIPE) shows up later as a failed start."""
        assert self.plan_w is not None
        try:
            logs.write_all(self.plan_w, data)
        except BrokenPipeError:
            final = True
        if final:
            os.close(self.plan_w)
            self.plan_w = None

    def close_streams(self) -> None:
        """The output pipes of an init that never ran the command (normally ``_pump`` reads them
        to EOF and closes them): a supervision thread must not leak them."""
        for fd in (self.out_r, self.err_r):
            try:
                os.close(fd)
            except OSError:
                pass

    def discard(self) -> None:
        """An init that will never run a command (a retired or failed pre-warmed one): kill it
        and close every pipe to it."""
        self.close_plan()
        self.kill()
        self.close_streams()
        os.close(self.error_r)

    def close_plan(self) -> None:
        if self.plan_w is not None:
            os.close(self.plan_w)
            self.plan_w = None

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)

    def failure(self, on_exec: Callable[[], None] | None = None) -> dict[str, Any] | None:
        """Blocks until the init exec'd (None) or reported why it could not (its report).

        ``on_exec`` runs when the init announces its exec (``init.EXEC_MARKER``), overlapping
        with the kernel loading the command; the report, if any, comes after the marker.
        """
        report = _read_until_marker(self.error_r)
        if report == init.EXEC_MARKER:
            if on_exec is not None:
                on_exec()
            report = read_all(self.error_r)
        else:
            report += read_all(self.error_r)
        return init.read_report(report)


def _read_until_marker(fd: int) -> bytes:
    """The first read of the init's error pipe: the exec marker alone, or the start of a report,
    or b"" (EOF: the init died without a word)."""
    while True:
        try:
            return os.read(fd, 1)
        except InterruptedError:
            continue


def read_all(fd: int) -> bytes:
    """Everything until EOF, then the fd closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _set_thread_scheduler(policy: int) -> None:
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))  # 0: the calling thread
    except OSError:
        pass
