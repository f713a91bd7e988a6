"""``exec``: run another process inside a running container's namespaces and cgroup.

The caller only posix_spawns ``nbdock-init`` (no fork of the caller: it may be a notebook kernel
holding gigabytes and running threads). Its plan names the container's PID 1, the namespaces to
join in the order that keeps each step permitted — user (rootless containers only: it grants the
capabilities every later setns needs, since the other namespaces belong to it), ipc, uts, net,
pid, cgroup, mnt — and the cgroup's files; it joins them (``native/join.c``), forks once more
(``setns`` into a PID namespace only affects children), and that child goes the same last
stretch the container's PID 1 went: user, workdir, caps, no_new_privs, seccomp, exec.
"""

from __future__ import annotations

import os

from nbdock.errors import Conflict
from nbdock.runtime import init, logs, native, state
from nbdock.runtime._plain import Frozen
from nbdock.runtime.init_process import read_all
from nbdock.runtime.linux import caps, userns
from nbdock.runtime.linux.cgroups import cgroups_available, open_cgroup
from nbdock.runtime.spec import ContainerSpec, Limits, Process

_NAMESPACE_ORDER = ("user", "ipc", "uts", "net", "pid", "cgroup", "mnt")


class ExecRequest(Frozen):
    __slots__ = ("args", "env", "cwd", "user")
    args: tuple[str, ...]
    env: tuple[str, ...]  # added to (and overriding) the container's environment
    cwd: str  # default: the container's working directory
    user: str | None  # default: the container's user

    def __init__(
        self, args: tuple[str, ...], env: tuple[str, ...] = (), cwd: str = "", user: str | None = None
    ) -> None:
        self._set(args=args, env=env, cwd=cwd, user=user)


def _merged_process(spec: ContainerSpec, request: ExecRequest) -> Process:
    env = dict(item.split("=", 1) for item in spec.process.env if "=" in item)
    env.update(item.split("=", 1) for item in request.env if "=" in item)
    return Process(
        args=request.args,
        env=tuple(f"{k}={v}" for k, v in env.items()),
        cwd=request.cwd or spec.process.cwd,
        user=spec.process.user if request.user is None else request.user,
    )


def exec_in_container(
    current: state.State,
    spec: ContainerSpec,
    request: ExecRequest,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
) -> int:
    """Run ``request`` in the container; returns its exit code (Docker's 126/127 on exec errors)."""
    if current.status != "running" or not state.is_alive(current.pid, current.pid_start):
        raise Conflict(f"container {current.id[:12]} is not running")
    process = _merged_process(spec, request)
    # A root engine's containers share its user namespace; setns into one's own is EINVAL.
    skip_user = userns.same_user_namespace(current.pid)
    namespaces = [name for name in _NAMESPACE_ORDER if not (name == "user" and skip_user)]
    cgroup = open_cgroup(current.cgroup_name, Limits()) if cgroups_available() else None
    procs = [str(path / "cgroup.procs") for path in cgroup.paths()] if cgroup is not None else []
    plan = init.exec_plan(spec, process, caps.last_cap(), init.seccomp_filter_for(spec),
                          join=(current.pid, namespaces, procs))
    plan_r, plan_w = os.pipe2(os.O_CLOEXEC)
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    try:
        child = init.spawn(native.init_binary(), plan_r, -1, error_w, stdout_fd, stderr_fd)
    finally:
        os.close(plan_r)
        os.close(error_w)
    try:
        logs.write_all(plan_w, plan)
    except BrokenPipeError:  # it failed before reading: its report says why
        pass
    finally:
        os.close(plan_w)
    report = init.read_report(read_all(error_r))
    _, status = os.waitpid(child, 0)
    if report:
        os.write(stderr_fd, f"nbdock: {report['message']}\n".encode())
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
