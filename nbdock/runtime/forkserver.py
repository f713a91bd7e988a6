"""A small process that forks supervisors on behalf of a big or threaded caller.

Why: ``launch`` forks the caller. For the CLI that is a ~20 MB single-threaded process and the
fork costs about a millisecond. A notebook kernel holding a few GB of data pays for copying its
page tables on every container start (60 ms at 500 MB, 110 ms at 1.5 GB, measured by
``bench/start_latency --ballast``), and it runs threads (ZMQ, heartbeat) whose locks a forked child
could inherit half-held. So such callers start this server once — a fresh interpreter that has
imported only the runtime — and ask it to launch each container; it sends back the event pipe
over a Unix socket (SCM_RIGHTS). Supervisors are orphaned at once either way, so containers do
not depend on this server, nor the server on the caller beyond the socket: when the caller goes
away the socket closes and the server exits.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdock import errors
from nbdock.runtime.spec import ContainerSpec
from nbdock.runtime.supervisor import ContainerPaths, launch

if TYPE_CHECKING:  # imported on first use: a small caller (the CLI) never starts the server
    import socket
    import subprocess

# A caller at least this big, or running threads, launches through the server.
HEAVY_RSS_BYTES = 256 * 1024 * 1024
_MAX_MESSAGE = 1 << 16


def caller_is_heavy() -> bool:
    """Python threads running, or a big resident set.

    ``threading`` is looked up, not imported: a process that never imported it runs no Python
    threads, and the CLI saves the import.
    """
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return True
    try:
        with open("/proc/self/statm") as handle:
            resident_pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return resident_pages * os.sysconf("SC_PAGE_SIZE") >= HEAVY_RSS_BYTES


class ForkServer:
    """The caller's side: one server process per caller process, started on first use."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid = 0

    def _ensure_started(self) -> socket.socket:
        alive = self._process is not None and self._process.poll() is None
        if self._socket is not None and self._owner_pid == os.getpid() and alive:
            return self._socket
        import socket
        import subprocess

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "nbdock.runtime.forkserver", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True,
        )
        theirs.close()
        self._socket, self._owner_pid = ours, os.getpid()
        return ours

    def launch(self, paths: ContainerPaths) -> int:
        """Have the server launch the container in ``paths``; returns the event pipe's fd."""
        request = {
            "directory": str(paths.directory),
            "env": {k: v for k, v in os.environ.items() if k.startswith("NBDOCK_")},
        }
        import socket

        with self._lock:
            sock = self._ensure_started()
            sock.sendall(json.dumps(request).encode())
            message, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 1)
        if not message:
            raise errors.RuntimeFailure("the nbdock fork server exited unexpectedly")
        reply = json.loads(message)
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            error_class = getattr(errors, reply["error"], errors.RuntimeFailure)
            if not (isinstance(error_class, type) and issubclass(error_class, errors.RuntimeFailure)):
                error_class = errors.RuntimeFailure
            raise error_class(reply["message"])
        return fds[0]


def _serve(sock: socket.socket) -> None:
    import socket

    while True:
        try:
            message = sock.recv(_MAX_MESSAGE)
        except InterruptedError:
            continue
        if not message:
            return  # the caller went away
        request: dict[str, Any] = json.loads(message)
        for key in [k for k in os.environ if k.startswith("NBDOCK_")]:
            del os.environ[key]
        os.environ.update(request["env"])
        paths = ContainerPaths(Path(request["directory"]))
        try:
            spec = ContainerSpec.from_json(paths.spec.read_text())
            events = launch(paths, spec)
        except Exception as error:  # noqa: BLE001 - every failure goes back to the caller
            reply = {"error": type(error).__name__, "message": str(error)}
            sock.sendall(json.dumps(reply).encode())
            continue
        socket.send_fds(sock, [b'{"ok": true}'], [events])
        os.close(events)


if __name__ == "__main__":
    import socket

    _serve(socket.socket(fileno=int(sys.argv[1])))
