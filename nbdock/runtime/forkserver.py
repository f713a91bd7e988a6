"""A small process that starts containers on behalf of a long-lived caller, and keeps one warm.

Why: ``launch`` forks the caller. For the CLI that is a ~20 MB single-threaded process and the
fork costs about a millisecond. A notebook kernel holding a few GB of data pays for copying its
page tables on every container start (60 ms at 500 MB, 110 ms at 1.5 GB, measured by
``bench/start_latency --ballast``), and it runs threads (ZMQ, heartbeat) whose locks a forked child
could inherit half-held. So such callers start this server once — a fresh interpreter that has
imported only the runtime — and ask it to launch each container; it sends back the event pipe
over a Unix socket (SCM_RIGHTS). Being long-lived, the server also keeps a pre-warmed container
ready (``pool.py``), which takes most of a start off the caller's path.

The server supervises the containers it starts from threads of its own (``launch_in_thread``:
no fork, no copy-on-write faults per start; pre-warmed containers are threads too, ``pool.py``);
rootless starts have supervisor processes. So a detached container depends on this server
like on any supervisor: when the caller goes away the socket closes, the server retires its
pre-warmed containers, and it exits once the last container it supervises has exited (if it is
SIGKILLed, its containers die with it, and the next engine start clears what is left, as for any
killed supervisor).

Protocol (SOCK_SEQPACKET, one JSON message each): the server first sends ``{"ready": true}``
once it has loaded what every start needs; then each request ``{"directory", "env"}`` gets
``{"ok": true}`` with the event fd attached, or ``{"error", "message"}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdock import errors
from nbdock.runtime import init, trace
from nbdock.runtime.plan import ContainerPaths, adopt_caller_env
from nbdock.runtime.spec import ContainerSpec, Process
from nbdock.runtime.supervisor import can_supervise_in_thread, launch, launch_in_thread

if TYPE_CHECKING:  # imported on first use: a small caller (the CLI) never starts the server
    import socket
    import subprocess

    from nbdock.runtime.pool import Pool

# A caller at least this big, or running threads, launches through the server.
HEAVY_RSS_BYTES = 256 * 1024 * 1024
_MAX_MESSAGE = 1 << 16
# A pre-warmed container is made once the caller pauses. Making one is kernel work under locks a
# start in progress also takes (the mount namespace semaphore, cgroup_mutex, rtnl): done during a
# start it slowed that start by more than it saved the next (session 2, with forked and
# pre-faulted entries: 14.5 ms against 12.1 back to back; session 3, entries as threads,
# refilled at once: 9.4/9.6/11.5 against 8.2/9.0/10.3). A notebook's cells are seconds apart,
# a loop's are not: a loop gets direct starts.
REFILL_AFTER_IDLE_S = 0.05
# How long close() waits for the server to exit before leaving it to its detached containers.
_EXIT_WAIT_S = 0.5  # an idle server exits in ~20 ms


_LOG_KEPT_BYTES = 1 << 20


def _open_log(path: Path | None) -> int | None:
    """The server's stderr, appended to; started afresh once it passes 1 MiB."""
    if path is None:
        return None
    try:
        if path.stat().st_size > _LOG_KEPT_BYTES:
            path.unlink()
    except FileNotFoundError:
        pass
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None


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

    def __init__(self, log_path: Path | None = None) -> None:
        import threading

        self._log_path = log_path  # the server's stderr: what a crash or a failed thread says

        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid = 0
        self._ready = False
        self.pooled_launches = 0  # starts that got a pre-warmed container (tests, diagnostics)

    def _running(self) -> bool:
        return (
            self._socket is not None and self._owner_pid == os.getpid()
            and self._process is not None and self._process.poll() is None
        )

    def start(self) -> None:
        """Spawn the server if it is not running; returns at once (it gets ready meanwhile)."""
        if self._running():
            return
        import socket
        import subprocess

        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = _open_log(self._log_path)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "nbdock.runtime.forkserver", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], start_new_session=True,
                # Not the caller's: the server may outlive it (detached containers), and a pipe
                # held open here would keep whoever reads the caller's output waiting.
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL if log is None else log,
            )
        finally:
            if log is not None:
                os.close(log)
        theirs.close()
        self._socket, self._owner_pid, self._ready = ours, os.getpid(), False

    def ready(self, timeout: float | None = 0.0) -> bool:
        """Whether the server has said it is ready (waiting up to ``timeout``; None: for good)."""
        if self._ready and self._running():
            return True
        if not self._running():
            return False
        import select

        assert self._socket is not None
        if not select.select([self._socket], [], [], timeout)[0]:
            return False
        message = self._socket.recv(_MAX_MESSAGE)
        self._ready = bool(message) and json.loads(message).get("ready") is True
        return self._ready

    def launch(self, paths: ContainerPaths) -> int:
        """Have the server launch the container in ``paths``; returns the event pipe's fd."""
        reply, fds = self._call({"directory": str(paths.directory)}, expect_fd=True)
        self.pooled_launches += bool(reply.get("pooled"))
        return fds[0]

    def prewarm(self, network: str = "none") -> None:
        """Have a pre-warmed container of this kind made now rather than after the next start."""
        self._call({"prewarm": {"network": network}}, expect_fd=False)

    def _call(self, request: dict[str, Any], expect_fd: bool) -> tuple[dict[str, Any], list[int]]:
        import socket

        request["env"] = {k: v for k, v in os.environ.items() if k.startswith("NBDOCK_")}
        with self._lock:
            self.start()
            if not self.ready(timeout=None):
                raise errors.RuntimeFailure("the nbdock fork server exited before it was ready")
            assert self._socket is not None
            self._socket.sendall(json.dumps(request).encode())
            message, fds, _flags, _addr = socket.recv_fds(self._socket, _MAX_MESSAGE, 1)
        if not message:
            raise errors.RuntimeFailure("the nbdock fork server exited unexpectedly")
        reply = json.loads(message)
        if "error" in reply or (expect_fd and not fds):
            for fd in fds:
                os.close(fd)
            error_class = getattr(errors, reply.get("error", ""), errors.RuntimeFailure)
            if not (isinstance(error_class, type) and issubclass(error_class, errors.RuntimeFailure)):
                error_class = errors.RuntimeFailure
            raise error_class(reply.get("message", "the nbdock fork server sent no event channel"))
        return reply, list(fds)

    def close(self) -> None:
        """Hang up: the server retires its pre-warmed containers and exits once no container it
        supervises is running (reaped here if that is soon)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        process, self._process = self._process, None
        if process is not None and self._owner_pid == os.getpid():
            import subprocess

            try:
                process.wait(timeout=_EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                # Still supervising detached containers (their supervision threads live in it):
                # it exits after the last one. Never kill it: its containers would die with it.
                pass
        self._ready = False

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: modules may be gone
            pass


def _preload() -> None:
    """Load once what every process forked from here needs, so none of them loads it again: the
    compiled default seccomp filter (instead of the on-disk cache at each start) and ``shutil``
    (every ``--rm`` supervisor's rmtree; imported in a fork it cost ~5 ms a container, and
    without a bytecode cache more, beside the next start).
    """
    import shutil  # noqa: F401 - see above

    spec = ContainerSpec(id="preload", process=Process(args=("true",)), layers=())
    try:
        init.seccomp_filter_for(spec)
    except Exception:  # noqa: BLE001 - a start that needs it reports the real error
        pass


def _raise_fd_limit() -> None:
    """Every container this server supervises holds ~5 fds here (its log, output and error
    pipes, the caller's channel): the usual soft limit of 1024 would cap it near 200."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            pass


def _serve(sock: socket.socket) -> None:
    import select
    import socket

    from nbdock.runtime.linux import libc
    from nbdock.runtime.pool import Pool

    libc.set_process_name("nbdock-forksrv")
    _raise_fd_limit()
    _preload()
    # SIGCHLD stays default: supervision threads wait for their inits; forked supervisors
    # (rootless starts) are double-forked, so none becomes our zombie.
    pool = Pool()
    wanted: set[Any] = set()  # kinds to pre-warm once the caller pauses
    sock.sendall(b'{"ready": true}')
    try:
        while True:
            if wanted and not select.select([sock], [], [], REFILL_AFTER_IDLE_S)[0]:
                for key in wanted:
                    pool.refill(key)
                wanted.clear()
                continue
            try:
                message = sock.recv(_MAX_MESSAGE)
            except InterruptedError:
                continue
            except ConnectionResetError:  # the caller exited with a request unread: same as EOF
                return
            if not message:
                return  # the caller went away
            trace.mark("F request")
            request: dict[str, Any] = json.loads(message)
            adopt_caller_env(request["env"])
            if "prewarm" in request:
                _prewarm(pool, request["prewarm"])
                sock.sendall(b'{"ok": true}')
                continue
            try:
                events, refill, pooled = _start(pool, request)
            except Exception as error:  # noqa: BLE001 - every failure goes back to the caller
                reply = {"error": type(error).__name__, "message": str(error)}
                sock.sendall(json.dumps(reply).encode())
                continue
            socket.send_fds(sock, [json.dumps({"ok": True, "pooled": pooled}).encode()], [events])
            trace.mark("F replied")
            os.close(events)
            if refill is not None:
                wanted.add(refill)
    finally:
        pool.close()


def _start(pool: Pool, request: dict[str, Any]) -> tuple[int, Any, bool]:
    """The started container's event fd, the pool kind to make ready for next time, and
    whether a pre-warmed container was used."""
    paths = ContainerPaths(Path(request["directory"]))
    spec = ContainerSpec.from_json(paths.spec.read_text())
    key = pool.key_for(spec)
    events = None if key is None else pool.assign(key, request["directory"])
    if events is not None:
        return events, key, True
    if can_supervise_in_thread(spec):
        return launch_in_thread(paths, spec), key, False
    return launch(paths, spec), key, False


def _prewarm(pool: Pool, kind: dict[str, Any]) -> None:
    key = pool.key_for_network("host" if kind.get("network") == "host" else "none")
    if key is not None:
        pool.refill(key)


if __name__ == "__main__":
    import socket

    _serve(socket.socket(fileno=int(sys.argv[1])))
