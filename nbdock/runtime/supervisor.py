"""The per-container supervisor (the role of conmon / containerd-shim), forked from the caller.

Why a supervisor: a detached container must outlive the notebook kernel or CLI that started it,
and someone must still collect its output and exit status. The caller forks twice (so the
supervisor is orphaned at once and never becomes the caller's zombie); the supervisor puts the
container in its cgroup, copies its stdout/stderr into the log file (and to the caller while it
listens), waits for it, and records the exit code and OOM verdict in the state file.

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
import json
import os
import select
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from nbdock.errors import UnsupportedFeature
from nbdock.runtime import init, logs, state, trace
from nbdock.runtime._plain import Frozen
from nbdock.runtime.linux import caps, libc, userns
from nbdock.runtime.linux.cgroups import Cgroup, cgroups_available, open_cgroup
from nbdock.runtime.names import NameIndex
from nbdock.runtime.spec import ContainerSpec, Limits

F_SETPIPE_SZ = 1031
# Re-exported: exec and older callers import it from here.
seccomp_filter_for = init.seccomp_filter_for


class ContainerPaths(Frozen):
    """Where one container's files live; every name derives from the container id."""

    __slots__ = ("directory",)
    directory: Path

    def __init__(self, directory: Path) -> None:
        self._set(directory=directory)

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"

    @property
    def upper(self) -> Path:
        return self.directory / "upper"

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def log(self) -> Path:
        return self.directory / "container.log"

    @property
    def spec(self) -> Path:
        return self.directory / "spec.json"

    @property
    def etc(self) -> Path:
        return self.directory / "etc"


def write_etc_files(paths: ContainerPaths, spec: ContainerSpec) -> dict[str, str]:
    """/etc/hostname and /etc/hosts as Docker generates them (and the host's resolv.conf)."""
    paths.etc.mkdir(exist_ok=True)
    hostname = spec.effective_hostname
    files = {
        "/etc/hostname": f"{hostname}\n",
        "/etc/hosts": (
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.1.1\t{hostname}\n"
        ),
    }
    if spec.network == "host" and os.path.exists("/etc/resolv.conf"):
        with open("/etc/resolv.conf") as handle:
            files["/etc/resolv.conf"] = handle.read()
    result = {}
    for target, content in files.items():
        host_file = paths.etc / os.path.basename(target)
        host_file.write_text(content)
        result[target] = str(host_file)
    return result


def unshare_flags(spec: ContainerSpec) -> int:
    """The namespaces the init creates (the PID namespace is the supervisor's doing)."""
    flags = libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWIPC | libc.CLONE_NEWCGROUP
    if spec.network != "host":
        flags |= libc.CLONE_NEWNET
    return flags


LIMITS_NEED_ROOT = "resource limits need root or a delegated cgroup v2 subtree"


def check_supported(spec: ContainerSpec) -> None:
    """Refuse what this engine cannot do, before any process or namespace is made.

    Not root, there is no cgroup to put limits in (a delegated cgroup v2 subtree, as systemd gives
    a user session, is not used yet), so ``--memory``/``--cpus``/``--pids-limit`` fail here
    rather than being silently ignored.
    """
    if spec.limits.any() and not cgroups_available():
        asked = [
            flag for flag, value in (
                ("--memory", spec.limits.memory_bytes), ("--cpus", spec.limits.cpus),
                ("--pids-limit", spec.limits.pids),
            ) if value is not None
        ]
        who = "rootless" if userns.is_rootless() else "without writable cgroups"
        raise UnsupportedFeature(f"{LIMITS_NEED_ROOT} ({' '.join(asked)} asked, {who})", spec.id)


def make_plan(paths: ContainerPaths, spec: ContainerSpec, with_filter: bool = True) -> init.InitPlan:
    """What the init needs; ``with_filter=False`` when the init resolves the filter itself."""
    rootless = userns.is_rootless()
    return init.InitPlan(
        spec=spec,
        rootfs=str(paths.rootfs),
        upper=str(paths.upper),
        work=str(paths.work),
        etc_files=write_etc_files(paths, spec),
        cap_last=caps.last_cap(),
        in_userns=rootless,
        seccomp_filter=init.seccomp_filter_for(spec) if with_filter else None,
        unshare_flags=unshare_flags(spec),
        id_mapping=userns.current_mapping() if rootless else None,
    )


def event_pipe() -> tuple[int, int]:
    """The supervisor → caller channel, with room for a burst of output before anyone reads."""
    events_r, events_w = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(events_w, F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    return events_r, events_w


_children_reaped_by_kernel = False


def reap_children_automatically() -> None:
    """For a process that forks supervisors for a living (the fork server): with SIGCHLD
    ignored the kernel reaps its children, so one fork is enough to never leave a zombie."""
    global _children_reaped_by_kernel
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    _children_reaped_by_kernel = True


def fork_detached(body: Callable[[], NoReturn]) -> None:
    """Run ``body`` in a child in its own session that is never our zombie.

    Normally a grandchild: the intermediate exits at once, so the caller (a CLI, a script) keeps
    its SIGCHLD handling. Where the kernel reaps children, a single fork (a millisecond less).
    """
    if _children_reaped_by_kernel:
        if os.fork() == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the supervisor waits for its init
                gc.disable()
                os.setsid()
                body()
            finally:
                os._exit(0)
        return
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
    """Fork the supervisor and return the read end of its event channel (the attach pipe)."""
    check_supported(spec)
    plan = make_plan(paths, spec)
    events_r, events_w = event_pipe()
    fork_detached(lambda: _supervise(paths, plan, events_w))
    os.close(events_w)
    return events_r


def detach_from_caller(*keep: int) -> None:
    """Drop every fd of the caller (a kernel's sockets, a terminal) except ``keep``."""
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


class InitProcess:
    """The container's PID 1 as forked by the supervisor, and the pipes we hold to it."""

    def __init__(
        self, flags: int, sync_fd_for_child: int, plan: init.InitPlan | None, plan_fd: int,
        close_in_child: tuple[int, ...],
    ) -> None:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        error_r, error_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (out_r, err_r, error_r, out_w, err_w, *close_in_child):
                os.close(fd)
            init.run(flags, sync_fd_for_child, error_w, plan=plan, plan_fd=plan_fd)
        for fd in (out_w, err_w, error_w):
            os.close(fd)
        self.pid, self.out_r, self.err_r, self.error_r = pid, out_r, err_r, error_r

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
            report = _read_all(self.error_r)
        else:
            report += _read_all(self.error_r)
        return json.loads(report.lstrip(init.EXEC_MARKER)) if report.strip(init.EXEC_MARKER) else None


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


def _supervise(paths: ContainerPaths, plan: init.InitPlan, events_fd: int) -> NoReturn:
    exit_code = init.EXIT_SETUP_FAILED
    trace.mark("S supervisor forked")
    try:
        detach_from_caller(events_fd)
        exit_code = _run_container(plan, Supervision(paths, Channel(events_fd)))
    finally:
        os._exit(exit_code & 0xFF)


def _run_container(plan: init.InitPlan, sup: Supervision) -> int:
    spec = plan.spec
    # Our next child is PID 1 of a new PID namespace; we stay in the host's to supervise it.
    try:
        new_pid_namespace(plan.id_mapping)
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        return sup.fail(f"namespaces: {error}", init.EXIT_SETUP_FAILED)
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    child = InitProcess(
        plan.unshare_flags, sync_r, plan, -1, close_in_child=(sync_w, sup.log_fd, *sup.channel.fds())
    )
    os.close(sync_r)
    trace.mark("S init forked")
    sup.record_supervisor()  # while the init sets up
    # The cgroup is made and joined while the init sets up its namespaces and filesystem (it
    # waits on the sync pipe only before it unshares the cgroup namespace): both take
    # milliseconds, so they overlap rather than add up.
    try:
        cgroup = join_cgroup(spec.id, spec.limits, child.pid, sync_w)
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        child.kill()
        # An init that failed its own setup meanwhile (and so could not be joined) has the
        # better explanation in the error pipe.
        report = child.failure()
        if report:
            return sup.fail(report["message"], report["exit_code"])
        return sup.fail(f"cgroup setup: {error}", init.EXIT_SETUP_FAILED)
    finally:
        os.close(sync_w)
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


def _read_until_marker(fd: int) -> bytes:
    """The first read of the init's error pipe: the exec marker alone, or the start of a report,
    or b"" (EOF: the init died without a word)."""
    while True:
        try:
            return os.read(fd, 1)
        except InterruptedError:
            continue


def _read_all(fd: int) -> bytes:
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
