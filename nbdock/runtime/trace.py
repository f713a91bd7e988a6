"""Start-path timestamps across processes, for ``bench/start_latency --phases``.

Why a module of its own: a start spans the caller, the fork server, a supervisor and the init,
and the pre-warmed ones are forked long before the bench could wrap anything. Each ``mark``
appends one line (pid, CLOCK_MONOTONIC ns, label) with O_APPEND to ``$NBDOCK_TRACE``; unset, a
mark is one environment lookup (read each time: the fork server takes each request's NBDOCK_*
variables, so a bench can turn tracing on for a running server). The file is opened per mark
because supervisors close inherited fds; the C init (``native/plan.c``) opens its own before
pivot_root and writes the same format.
"""

from __future__ import annotations

import os
import time

TRACE_ENV = "NBDOCK_TRACE"


def mark(label: str) -> None:
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    line = f"{os.getpid()} {time.monotonic_ns()} {label}\n".encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        os.write(fd, line)
    except OSError:
        pass
    finally:
        os.close(fd)
