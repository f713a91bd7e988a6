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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nbdock.errors import UnsupportedFeature
from nbdock.runtime import init, logs, state
from nbdock.runtime.linux import caps, libc, userns
from nbdock.runtime.linux.cgroups import Cgroup, cgroups_available, open_cgroup
from nbdock.runtime.spec import ContainerSpec

F_SETPIPE_SZ = 1031
_filter_cache: dict[tuple[str, ...], Any] = {}


@dataclass(frozen=True)
class ContainerPaths:
    """Where one container's files live; every name derives from the container id."""

    directory: Path

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


def seccomp_filter_for(spec: ContainerSpec) -> Any:
    """Build the filter once per capability set in the caller; forks inherit the compiled filter."""
    if not spec.seccomp:
        return None
    key = tuple(sorted(spec.capabilities))
    if key not in _filter_cache:
        from nbdock.runtime.linux import seccomp

        _filter_cache[key] = seccomp.cached_default_filter(spec.capabilities)
    return _filter_cache[key]


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


def _unshare_flags(spec: ContainerSpec) -> int:
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


def launch(paths: ContainerPaths, spec: ContainerSpec) -> int:
    """Fork the supervisor and return the read end of its event channel (the attach pipe)."""
    check_supported(spec)
    rootless = userns.is_rootless()
    plan = init.InitPlan(
        spec=spec,
        rootfs=str(paths.rootfs),
        upper=str(paths.upper),
        work=str(paths.work),
        etc_files=write_etc_files(paths, spec),
        cap_last=caps.last_cap(),
        in_userns=rootless,
        seccomp_filter=seccomp_filter_for(spec),
        unshare_flags=_unshare_flags(spec),
        id_mapping=userns.current_mapping() if rootless else None,
    )
    events_r, events_w = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(events_w, F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    first = os.fork()
    if first == 0:
        try:
            # A collection would write to every tracked object's header: copy-on-write faults
            # on the caller's whole heap. The supervisor and the init make no cycles worth it.
            gc.disable()
            os.close(events_r)
            os.setsid()
            if os.fork() == 0:
                _supervise(paths, plan, events_w)
        finally:
            os._exit(0)
    os.close(events_w)
    os.waitpid(first, 0)
    return events_r


def _detach_from_caller(keep: int) -> None:
    """Drop every fd of the caller (a kernel's sockets, a terminal) except the event pipe."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    if keep > 3:
        libc.close_range(3, keep - 1)
    libc.close_range(keep + 1)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)


class _Channel:
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


def _supervise(paths: ContainerPaths, plan: init.InitPlan, events_fd: int) -> NoReturn:
    exit_code = init.EXIT_SETUP_FAILED
    try:
        _detach_from_caller(events_fd)
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        exit_code = _run_container(paths, plan, _Channel(events_fd))
    finally:
        os._exit(exit_code & 0xFF)


def _open_cgroup(spec: ContainerSpec) -> Cgroup | None:
    if not cgroups_available():
        check_supported(spec)
        return None
    cgroup = open_cgroup(spec.id, spec.limits)
    cgroup.create()
    return cgroup


def _new_pid_namespace(plan: init.InitPlan) -> None:
    """As root, just a PID namespace; rootless, inside a new user namespace that owns it.

    In the user namespace the supervisor is root with every capability over the namespaces PID 1
    then creates (mount, uts, ipc, net, cgroup), which is what lets it mount the overlay and /proc.
    """
    if plan.id_mapping is None:
        libc.unshare(libc.CLONE_NEWPID)
    else:
        userns.unshare_mapped(plan.id_mapping, libc.CLONE_NEWPID)


class _Recorder:
    """Writes the state file. The supervisor is its only writer while it lives, so the file is
    read once and the copy kept in memory instead of re-read before every change."""

    def __init__(self, paths: ContainerPaths) -> None:
        self.directory = paths.directory
        self.current: state.State | None = None

    def __call__(self, paths: ContainerPaths, **changes: Any) -> state.State:
        if self.current is None:
            self.current = state.load(self.directory)
        for key, value in changes.items():
            setattr(self.current, key, value)
        state.save(self.directory, self.current)
        return self.current


def _run_container(paths: ContainerPaths, plan: init.InitPlan, channel: _Channel) -> int:
    spec = plan.spec
    _record = _Recorder(paths)
    log_fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    shim_pid = os.getpid()
    _record(paths, shim_pid=shim_pid, shim_start=state.process_start_time(shim_pid) or 0)

    def emit(stream: int, data: bytes) -> None:
        record = logs.frame(stream, data)
        logs.write_all(log_fd, record)
        channel.send(record)

    # Our next child is PID 1 of a new PID namespace; we stay in the host's to supervise it.
    try:
        _new_pid_namespace(plan)
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        return _finish_failed(paths, channel, emit, f"namespaces: {error}", init.EXIT_SETUP_FAILED, _record)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (out_r, err_r, sync_w, error_r, log_fd, out_w, err_w):
            os.close(fd)
        if channel.fd is not None:
            os.close(channel.fd)
        init.run(plan, sync_r, error_w)
    for fd in (out_w, err_w, sync_r, error_w):
        os.close(fd)
    # The cgroup is made and joined while the init sets up its namespaces and filesystem (it
    # waits on the sync pipe only before it unshares the cgroup namespace): both take
    # milliseconds, so they overlap rather than add up.
    step = "cgroup setup"
    try:
        cgroup = _open_cgroup(spec)
        step = "cgroup join"
        if cgroup is not None:
            cgroup.add_process(pid)
        os.write(sync_w, b"1")
    except Exception as error:  # noqa: BLE001 - reported to the caller as a failed start
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        # An init that failed its own setup meanwhile (and so could not be joined) has the
        # better explanation in the error pipe.
        failure = _read_all(error_r)
        if failure:
            report = json.loads(failure)
            return _finish_failed(paths, channel, emit, report["message"], report["exit_code"], _record)
        return _finish_failed(paths, channel, emit, f"{step}: {error}", init.EXIT_SETUP_FAILED, _record)
    finally:
        os.close(sync_w)
    failure = _read_all(error_r)
    if failure:
        os.waitpid(pid, 0)
        report = json.loads(failure)
        if cgroup is not None:
            cgroup.destroy()
        return _finish_failed(paths, channel, emit, report["message"], report["exit_code"], _record)
    _record(
        paths, status="running", pid=pid, pid_start=state.process_start_time(pid) or 0,
        started_at=state.now_iso(), finished_at="", exit_code=None, oom_killed=False, error="",
    )
    channel.send(logs.event_frame(event="started", pid=pid))
    _pump(out_r, err_r, emit)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    exit_code = 128 - code if code < 0 else code
    oom = exit_code == 137 and cgroup is not None and cgroup.oom_killed()
    if cgroup is not None:
        cgroup.destroy()
    final = _record(
        paths, status="exited", exit_code=exit_code, finished_at=state.now_iso(), oom_killed=oom
    )
    channel.send(logs.event_frame(event="exited", exit_code=exit_code, oom_killed=oom))
    if final.auto_remove:
        _auto_remove(paths, channel)
    return exit_code


def _auto_remove(paths: ContainerPaths, channel: _Channel) -> None:
    """``--rm``: the container vanishes (one atomic rename) before the caller sees end-of-stream.

    The caller of ``run(..., remove=True)`` reads until EOF, so renaming first and closing the
    channel next lets it return with the container already gone, while the slow part (deleting
    the upper layer's files) happens after, off its path. A supervisor killed before the
    ``rmtree`` leaves a ``.removing-*`` directory that ``Runtime.cleanup`` finishes.
    """
    marker = paths.directory.parent / f".removing-{paths.directory.name}"
    try:
        os.replace(paths.directory, marker)
    except OSError:
        marker = paths.directory
    channel.close()
    import shutil  # only here, after the caller has its answer: keeps the CLI's imports small

    shutil.rmtree(marker, ignore_errors=True)


def _finish_failed(
    paths: ContainerPaths, channel: _Channel, emit: Any, message: str, exit_code: int,
    _record: _Recorder,
) -> int:
    emit(logs.STDERR, f"nbdock: {message}\n".encode())
    final = _record(
        paths, status="exited", exit_code=exit_code, finished_at=state.now_iso(), error=message
    )
    channel.send(logs.event_frame(event="failed", exit_code=exit_code, message=message))
    if final.auto_remove:
        _auto_remove(paths, channel)
    return exit_code


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


def _pump(out_fd: int, err_fd: int, emit: Any) -> None:
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
