"""The per-container supervisor (the role of conmon / containerd-shim), forked from the caller.

Why a supervisor: a detached container must outlive the notebook kernel or CLI that started it,
and someone must still collect its output and exit status. The caller forks twice (so the
supervisor is orphaned at once and never becomes the caller's zombie; the fork server, whose
children the kernel reaps, forks once); what it runs is worked out before (``plan.py``). It puts
the container in its cgroup, copies its stdout/stderr into the log file (and to the caller while
it listens), waits for it, and records the exit code and OOM verdict in the state file.

If the supervisor is SIGKILLed, the container's PID 1 dies with it (PDEATHSIG), the PID namespace
takes every other process, the mount namespace takes every mount; only the empty cgroup is left,
and ``Runtime.cleanup`` removes it at the next start.

Rootless (not root): the supervisor first moves itself into a new user namespace in which the
caller is root (``userns.unshare_mapped``), creating the PID namespace with it, and from there
everything is as for root: its next child is PID 1, and PDEATHSIG, ``waitpid`` statuses and the
recorded pid are the same. Staying in the host's user namespace would need one more process to
own the namespaces and relay PID 1's exit status; nothing in the container can reach the
supervisor, which lives in the host's PID namespace. There is no cgroup, so limits are refused.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import os
import select
import signal
from collections.abc import Callable
from typing import Any, NoReturn

from nbdock.runtime import init, logs, native, state, trace
from nbdock.runtime.init_process import InitProcess
from nbdock.runtime.linux import libc, userns
from nbdock.runtime.linux.cgroups import Cgroup, cgroups_available, open_cgroup
from nbdock.runtime.names import NameIndex
from nbdock.runtime.plan import ContainerPaths, check_supported, make_plan
from nbdock.runtime.spec import ContainerSpec, Limits

F_SETPIPE_SZ = 1031


def event_pipe() -> tuple[int, int]:
    """The supervisor → caller channel, with room for a burst of output before anyone reads."""
    events_r, events_w = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(events_w, F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    return events_r, events_w


def fork_detached(body: Callable[[], NoReturn]) -> None:
    """Run ``body`` in a grandchild in its own session that is never our zombie: the
    intermediate exits at once, so the caller (a CLI, a script) keeps its SIGCHLD handling."""
    first = os.fork()
    if first == 0:
        try:
            # A collection would write to every tracked object's header: copy-on-write faults
            # on the caller's whole heap. The supervisor and the init make no cycles worth it.
            gc.disable()
            os.setsid()
            if os.fork() == 0:
                body()
        finally:
            os._exit(0)
    os.waitpid(first, 0)


def launch(paths: ContainerPaths, spec: ContainerSpec) -> int:
    """Fork the supervisor and return the read end of its event channel (the attach pipe).

    The init's plan is encoded here, before the fork: code run in a freshly forked Python
    process pays a copy-on-write fault for every page it writes (refcounts), so the supervisor
    is left only what must happen in it.
    """
    plan, init_plan, program = _prepare(paths, spec)
    events_r, events_w = event_pipe()
    fork_detached(lambda: _supervise(paths, plan, init_plan, program, events_w))
    os.close(events_w)
    return events_r


def can_supervise_in_thread(spec: ContainerSpec) -> bool:
    """Rootless starts need a process of their own: unshare(CLONE_NEWUSER) is refused to a
    process with threads."""
    return not userns.is_rootless()


def launch_in_thread(paths: ContainerPaths, spec: ContainerSpec) -> int:
    """The fork server's way: supervise the container from a thread of this process.

    Why: a forked supervisor cost every start a fork of the server (~1 ms for its ~8 MB) and
    ~1,000 copy-on-write faults across the two processes (~5 us each here), most of them on the
    start's path; a thread costs neither. The thread lives as long as the container: the
    kernel's parent-death signal, which ties the container to its supervisor, follows the
    thread that spawned the init. Not a daemon thread: the process outlives its caller while it
    supervises (detached containers must), and exits after the last one.
    """
    import threading

    plan, init_plan, program = _prepare(paths, spec)
    events_r, events_w = event_pipe()
    threading.Thread(
        target=_supervise_in_thread, args=(paths, plan, init_plan, program, events_w),
        name=f"nbdock-shim-{spec.id[:12]}",
    ).start()
    return events_r


def _prepare(paths: ContainerPaths, spec: ContainerSpec) -> tuple[init.InitPlan, bytes, str]:
    check_supported(spec)
    plan = make_plan(paths, spec)
    init_plan = init.isolation_part(plan.unshare_flags) + init.container_part(plan)
    program = native.init_binary()  # a missing program is the caller's error, not a log line
    return plan, init_plan, program


def detach_from_caller(*keep: int) -> None:
    """Drop every fd of the caller (a kernel's sockets, a terminal) except ``keep``."""
    libc.set_process_name("nbdock-shim")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    low = 3
    for fd in sorted(keep):
        if fd > low:
            libc.close_range(low, fd - 1)
        low = fd + 1
    libc.close_range(low)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)


class Channel:
    """The caller's live feed; once the caller stops listening we keep only the log file."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def send(self, data: bytes) -> None:
        if self.fd is None:
            return
        try:
            logs.write_all(self.fd, data)
        except OSError:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def fds(self) -> tuple[int, ...]:
        return () if self.fd is None else (self.fd,)


class Recorder:
    """Writes the state file. The supervisor is its only writer while it lives, so the file is
    read once and the copy kept in memory instead of re-read before every change."""

    def __init__(self, paths: ContainerPaths) -> None:
        self.directory = paths.directory
        self.current: state.State | None = None

    def __call__(self, **changes: Any) -> state.State:
        if self.current is None:
            self.current = state.load(self.directory)
        for key, value in changes.items():
            setattr(self.current, key, value)
        state.save(self.directory, self.current)
        return self.current


class Supervision:
    """One container as its supervisor sees it: files, feed, state, and later its init."""

    def __init__(self, paths: ContainerPaths, channel: Channel) -> None:
        self.paths = paths
        self.channel = channel
        self.record = Recorder(paths)
        self.log_fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def emit(self, stream: int, data: bytes) -> None:
        record = logs.frame(stream, data)
        logs.write_all(self.log_fd, record)
        self.channel.send(record)

    def record_supervisor(self, cgroup: str = "") -> None:
        shim_pid = os.getpid()
        self.record(shim_pid=shim_pid, shim_start=state.process_start_time(shim_pid) or 0, cgroup=cgroup)

    def fail(self, message: str, exit_code: int) -> int:
        self.emit(logs.STDERR, f"nbdock: {message}\n".encode())
        final = self.record(
            status="exited", exit_code=exit_code, finished_at=state.now_iso(), error=message
        )
        self.channel.send(logs.event_frame(event="failed", exit_code=exit_code, message=message))
        if final.auto_remove:
            _auto_remove(self.paths, self.channel, None, final)
        return exit_code


def join_cgroup(name: str, limits: Limits, pid: int, sync_w: int) -> Cgroup | None:
    """Create and join the container's cgroup, then let the init go on past its sync point."""
    cgroup = None
    if cgroups_available():
        cgroup = open_cgroup(name, limits)
        cgroup.create()
        cgroup.add_process(pid)
    os.write(sync_w, b"1")
    return cgroup


def new_pid_namespace(id_mapping: userns.IdMapping | None) -> None:
    """As root, just a PID namespace; rootless, inside a new user namespace that owns it.

    In the user namespace the supervisor is root with every capability over the namespaces PID 1
    then creates (mount, uts, ipc, net, cgroup), which is what lets it mount the overlay and /proc.
    """
    if id_mapping is None:
        libc.unshare(libc.CLONE_NEWPID)
    else:
        userns.unshare_mapped(id_mapping, libc.CLONE_NEWPID)


def _supervise(
    paths: ContainerPaths, plan: init.InitPlan, init_plan: bytes, program: str, events_fd: int
) -> NoReturn:
    exit_code = init.EXIT_SETUP_FAILED
    trace.mark("S supervisor forked")
    try:
        exit_code = _run_container(paths, plan, init_plan, program, events_fd)
    finally:
        os._exit(exit_code & 0xFF)


class ThreadResources:
    """What a supervision thread opened: a forked supervisor's fds go with its process, a
    thread's must be closed by hand, whatever happens."""

    def __init__(self, events_fd: int) -> None:
        self.fds = [events_fd]
        self.channel: Channel | None = None

    def supervision(self, paths: ContainerPaths) -> Supervision:
        """The container's supervision, its events fd now owned by its channel, its log kept here."""
        self.channel = Channel(self.fds.pop(0))
        sup = Supervision(paths, self.channel)
        self.fds.append(sup.log_fd)
        return sup

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()  # the events fd, unless already closed (--rm closes it early)
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _supervise_in_thread(
    paths: ContainerPaths, plan: init.InitPlan, init_plan: bytes, program: str, events_fd: int
) -> None:
    """The PID namespace is made by this thread alone: unshare acts on the calling thread."""
    resources = ThreadResources(events_fd)
    try:
        _run_container(paths, plan, init_plan, program, events_fd, in_thread=resources)
    except BaseException as error:  # noqa: BLE001 - a thread's failure must not pass silently
        trace.mark(f"S supervision failed: {error!r}")
        import traceback  # to the fork server's stderr: its log beside the containers

        traceback.print_exc()
        try:  # the init died with this thread (parent-death signal): say so in the state
            recorder = Recorder(paths)
            if recorder(error="").status in ("created", "running"):
                recorder(status="exited", exit_code=init.EXIT_SETUP_FAILED,
                         finished_at=state.now_iso(), error=f"supervisor: {error!r}")
        except Exception:  # noqa: BLE001 - the container directory may be gone (--rm)
            pass
    finally:
        resources.close()


def _run_container(
    paths: ContainerPaths, plan: init.InitPlan, init_plan: bytes, program: str, events_fd: int,
    in_thread: ThreadResources | None = None,
) -> int:
    """The init first, then everything else: what the supervisor does before the spawn delays
    the container; what it does after overlaps with the init setting itself up."""
    spec = plan.spec
    child = sync_w = None
    failure = ""
    try:
        # Our next child is PID 1 of a new PID namespace; we stay in the host's to supervise it.
        new_pid_namespace(plan.id_mapping)
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        try:
            child = InitProcess(sync_r, init_plan, b"", program)
        finally:
            os.close(sync_r)
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        failure = f"container init: {error}"
    trace.mark("S init forked")
    if in_thread is None:
        keep = () if child is None else (child.out_r, child.err_r, child.error_r, sync_w)
        detach_from_caller(events_fd, *keep)
        sup = Supervision(paths, Channel(events_fd))
    else:
        sup = in_thread.supervision(paths)
    if child is None:
        if sync_w is not None:
            os.close(sync_w)
        return sup.fail(failure, init.EXIT_SETUP_FAILED)
    assert sync_w is not None
    # The cgroup is made and joined while the init sets up its namespaces and filesystem (it
    # waits on the sync pipe only before it unshares the cgroup namespace): both take
    # milliseconds, so they overlap rather than add up. The state file after: nobody waits on it.
    try:
        cgroup = join_cgroup(spec.id, spec.limits, child.pid, sync_w)
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        child.kill()
        child.close_streams()
        # An init that failed its own setup meanwhile (and so could not be joined) has the
        # better explanation in the error pipe.
        report = child.failure()
        if report:
            return sup.fail(report["message"], report["exit_code"])
        return sup.fail(f"cgroup setup: {error}", init.EXIT_SETUP_FAILED)
    finally:
        os.close(sync_w)
    sup.record_supervisor()
    return supervise_started(sup, child, cgroup)


def supervise_started(sup: Supervision, child: InitProcess, cgroup: Cgroup | None) -> int:
    """From an init that is setting up to its recorded exit: the part every start shares."""

    def record_running() -> None:
        sup.record(
            status="running", pid=child.pid, pid_start=state.process_start_time(child.pid) or 0,
            started_at=state.now_iso(), finished_at="", exit_code=None, oom_killed=False, error="",
        )

    report = child.failure(on_exec=record_running)
    trace.mark("S exec seen")
    if report:
        os.waitpid(child.pid, 0)
        child.close_streams()
        if cgroup is not None:
            cgroup.destroy()
        return sup.fail(report["message"], report["exit_code"])
    sup.channel.send(logs.event_frame(event="started", pid=child.pid))
    trace.mark("S started sent")
    _pump(child.out_r, child.err_r, sup.emit)
    _, status = os.waitpid(child.pid, 0)
    trace.mark("S reaped")
    code = os.waitstatus_to_exitcode(status)
    exit_code = 128 - code if code < 0 else code
    oom = exit_code == 137 and cgroup is not None and cgroup.oom_killed()
    auto_remove = sup.record.current is not None and sup.record.current.auto_remove
    # A container that stays (no --rm) may be started again under the same cgroup name, so its
    # cgroup goes before anyone hears it exited. An auto-removed one is unreachable once renamed:
    # its caller gets the answer first, and the (empty) cgroup and the files go after.
    exited = logs.event_frame(event="exited", exit_code=exit_code, oom_killed=oom)
    if auto_remove:  # nobody reads the state of a container that is about to vanish
        sup.channel.send(exited)
        trace.mark("S exited sent")
        _auto_remove(sup.paths, sup.channel, cgroup, sup.record.current)
        return exit_code
    if cgroup is not None:
        cgroup.destroy()
    sup.record(status="exited", exit_code=exit_code, finished_at=state.now_iso(), oom_killed=oom)
    sup.channel.send(exited)
    trace.mark("S exited sent")
    return exit_code


def _auto_remove(
    paths: ContainerPaths, channel: Channel, cgroup: Cgroup | None = None,
    current: state.State | None = None,
) -> None:
    """``--rm``: the container vanishes (one atomic rename) before the caller sees end-of-stream.

    The caller of ``run(..., remove=True)`` reads until EOF, so renaming first and closing the
    channel next lets it return with the container already gone, while the slow part (the
    cgroup, the upper layer's files) happens after, off its path. A supervisor killed before the
    ``rmtree`` leaves a ``.removing-*`` directory that ``Runtime.cleanup`` finishes.
    """
    marker = paths.directory.parent / f".removing-{paths.directory.name}"
    try:
        os.replace(paths.directory, marker)
    except OSError:
        marker = paths.directory
    channel.close()
    trace.mark("S channel closed")
    if current is not None:
        NameIndex(paths.directory.parent, list).release(current.name, current.id)
    if cgroup is not None:
        cgroup.destroy()
    import shutil  # only here, after the caller has its answer: keeps the CLI's imports small

    shutil.rmtree(marker, ignore_errors=True)


def _pump(out_fd: int, err_fd: int, emit: Callable[[int, bytes], None]) -> None:
    """Copy output to the log as it comes, until the container closes both streams."""
    streams = {out_fd: logs.STDOUT, err_fd: logs.STDERR}
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    while streams:
        for fd, _ in poller.poll():
            try:
                data = os.read(fd, 65536)
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                data = b""
            if data:
                emit(streams[fd], data)
            else:
                poller.unregister(fd)
                os.close(fd)
                del streams[fd]
