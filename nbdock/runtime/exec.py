"""``exec``: run another process inside a running container's namespaces and cgroup.

The joining process opens every namespace of the container's PID 1 first (the fds stay valid
while it moves), joins the cgroup, then setns in the order that keeps each step permitted:
user (rootless containers only: it grants the capabilities every later setns needs, since the
other namespaces belong to it), ipc, uts, net, pid, cgroup, mnt. ``setns`` into a PID namespace
only affects children, so it forks once more; that grandchild is in the container and becomes
``nbdock-init`` with a plan of only the last stretch the container's PID 1 went through (user,
workdir, caps, no_new_privs, seccomp, exec). The program is opened before ``setns`` into the
mount namespace, which hides the host's files, and exec'd by fd (it is static: it needs nothing
from the container's filesystem).
"""

from __future__ import annotations

import os
import signal
from typing import Any, NoReturn

from nbdock.errors import Conflict, RuntimeFailure
from nbdock.runtime import init, native, state
from nbdock.runtime._plain import Frozen
from nbdock.runtime.linux import caps, libc, userns
from nbdock.runtime.linux.cgroups import Cgroup, cgroups_available, open_cgroup
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
    namespaces = []
    try:
        # A root engine's containers share its user namespace; setns into one's own is EINVAL.
        skip_user = userns.same_user_namespace(current.pid)
        for name in _NAMESPACE_ORDER:
            if name == "user" and skip_user:
                continue
            namespaces.append(os.open(f"/proc/{current.pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
    except OSError as error:
        for fd in namespaces:
            os.close(fd)
        raise RuntimeFailure(f"cannot open namespaces of {current.id[:12]}: {error}") from None
    cgroup = open_cgroup(current.cgroup_name, Limits()) if cgroups_available() else None
    plan = init.exec_plan(spec, process, caps.last_cap(), init.seccomp_filter_for(spec))
    program = os.open(native.init_binary(), os.O_PATH | os.O_CLOEXEC)
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(error_r)
        _join_and_run(namespaces, cgroup, program, plan, error_w, stdout_fd, stderr_fd)
    for fd in (error_w, program, *namespaces):
        os.close(fd)
    report = _read_report(error_r)
    _, status = os.waitpid(child, 0)
    if report:
        os.write(stderr_fd, f"nbdock: {report['message']}\n".encode())
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _read_report(fd: int) -> dict[str, Any] | None:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    os.close(fd)
    return init.read_report(data)


def _join_and_run(
    namespaces: list[int],
    cgroup: Cgroup | None,
    program: int,
    plan: bytes,
    error_fd: int,
    stdout_fd: int,
    stderr_fd: int,
) -> NoReturn:
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        if cgroup is not None:
            cgroup.add_process(os.getpid())
        for fd in namespaces:
            libc.setns(fd)
        plan_r, plan_w = os.pipe2(os.O_CLOEXEC)
        grandchild = os.fork()
        if grandchild == 0:
            try:
                libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
                os.close(plan_w)
                for fd in (plan_r, error_fd):
                    os.set_inheritable(fd, True)
                os.execve(program, ["nbdock-init", str(plan_r), "-1", str(error_fd)], {})
            except BaseException as error:  # noqa: BLE001 - never unwind into the caller's code
                init.report_and_exit(error_fd, f"exec: {error}", init.EXIT_SETUP_FAILED)
        os.close(plan_r)
        os.close(error_fd)
        view = memoryview(plan)
        try:
            while view:
                view = view[os.write(plan_w, view):]
        except BrokenPipeError:  # the grandchild failed before reading: its report says why
            pass
        os.close(plan_w)
        _, status = os.waitpid(grandchild, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)
    except BaseException as error:  # noqa: BLE001
        init.report_and_exit(error_fd, f"exec: {error}", init.EXIT_SETUP_FAILED)
