"""The child side: one ordered sequence from a forked process to the user's command.

It runs in the container's PID 1, forked by the supervisor into a fresh PID namespace. The order
matters and each step says why. Nothing here may import a module or open a host library after
``pivot_into``: everything needed is imported at the top of this file and prepared in ``InitPlan``.
Any failure is written as JSON to ``error_fd`` (close-on-exec, so a successful exec closes it
silently and the supervisor reads EOF = started).
"""

from __future__ import annotations

# _socket, not socket: the wrapper module's enums cost every CLI start ~1.5 ms of imports.
import _socket
import errno
import fcntl
import json
import os
import signal
import struct
from typing import Any, NoReturn

from nbdock.runtime import trace
from nbdock.runtime._plain import Plain
from nbdock.runtime.linux import caps, libc, mounts, userns, users
from nbdock.runtime.spec import ContainerSpec, Process

# Exit codes with Docker's meaning: setup failed, command not executable, command not found.
EXIT_SETUP_FAILED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


class InitPlan(Plain):
    """Everything the init needs, computed by the supervisor before the fork.

    A pre-warmed init receives it pickled (``pool.py``): every field must pickle.
    """

    __slots__ = (
        "spec", "rootfs", "upper", "work", "etc_files", "cap_last", "in_userns", "seccomp_filter",
        "unshare_flags", "id_mapping",
    )

    def __init__(
        self,
        spec: ContainerSpec,
        rootfs: str,  # the (empty) directory the overlay is mounted on
        upper: str,
        work: str,
        etc_files: dict[str, str],  # container path -> generated host file (hostname, hosts, ...)
        cap_last: int,
        in_userns: bool,  # rootless: made inside a user namespace (no mknod, overlay userxattr)
        seccomp_filter: Any,  # a prebuilt SeccompFilter, or None for unconfined
        unshare_flags: int,  # namespaces this process still has to create (PID: the parent's)
        id_mapping: userns.IdMapping | None = None,  # rootless: the user namespace's uid/gid maps
    ) -> None:
        self.spec = spec
        self.rootfs = rootfs
        self.upper = upper
        self.work = work
        self.etc_files = etc_files
        self.cap_last = cap_last
        self.in_userns = in_userns
        self.seccomp_filter = seccomp_filter
        self.unshare_flags = unshare_flags
        self.id_mapping = id_mapping


class SetupError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_SETUP_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def report_and_exit(error_fd: int, message: str, exit_code: int) -> NoReturn:
    payload = json.dumps({"message": message, "exit_code": exit_code}).encode()
    try:
        os.write(error_fd, payload)
    except OSError:
        pass
    os._exit(exit_code)


def _bring_up_loopback() -> None:
    """A new network namespace starts with ``lo`` down; Docker brings it up (127.0.0.1 works)."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))
    finally:
        sock.close()


def _setup_filesystem(plan: InitPlan) -> None:
    """Mount the container's root and switch into it (propagation is already private)."""
    spec = plan.spec
    # 2. The overlay root: image layers read-only, this container's upper dir on top.
    mounts.mount_overlay(plan.rootfs, spec.layers, plan.upper, plan.work, plan.in_userns)
    # 3. Kernel filesystems, mounted from inside our PID namespace so /proc shows only us.
    mounts.mount_proc_sys(plan.rootfs, new_netns=spec.network != "host")
    mounts.mount_dev(plan.rootfs, can_mknod=not plan.in_userns)
    # 4. Generated /etc files, then the user's volumes (which may deliberately cover them).
    for target, source in plan.etc_files.items():
        mounts.bind_file(source, plan.rootfs, target)
    mounts.mount_user_volumes(plan.rootfs, spec.mounts)
    # 5. Switch roots; from here on the host's filesystem is unreachable.
    mounts.pivot_into(plan.rootfs)
    # 6. Hide and freeze the kernel knobs Docker hides, then the root itself if asked.
    mounts.mask_paths()
    if spec.readonly_rootfs:
        # Docker creates a missing working directory (-w, WORKDIR) before the root turns
        # read-only; afterwards it could not.
        _enter_workdir(spec.process.cwd)
        mounts.make_root_readonly()


def _enter_workdir(cwd: str) -> None:
    # After pivot_root any absolute path is inside the container; Docker creates a missing -w.
    if not os.path.isdir(cwd):
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)
        except OSError as error:
            raise SetupError(f"cannot create working directory {cwd}: {error.strerror}") from None
    os.chdir(cwd)


def _drop_privileges(spec: ContainerSpec, cap_last: int, user: users.ExecUser) -> None:
    keep = caps.capability_mask(spec.capabilities)
    # Bounding set and ambient go first: dropping them needs CAP_SETPCAP, which we still have.
    caps.drop_bounding_and_ambient(keep, cap_last)
    # KEEPCAPS so setuid to a non-root user does not fail half-way; capset then empties the sets.
    libc.prctl(libc.PR_SET_KEEPCAPS, 1)
    _set_ids(user)
    caps.set_process_caps(keep, as_root_user=user.uid == 0)
    # no_new_privs: setuid binaries and file caps cannot regain what we just dropped.
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)


def _set_ids(user: users.ExecUser) -> None:
    """setgroups, setgid, setuid; in a user namespace, ids outside its maps cannot be taken."""
    try:
        os.setgroups(list(user.groups))
    except PermissionError:
        # Self-mapped rootless namespace: setgroups is denied for good, and the only group that
        # exists inside is the caller's own, so there is nothing else to switch to.
        if not userns.setgroups_denied():
            raise
    try:
        os.setgid(user.gid)
        os.setuid(user.uid)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        raise SetupError(
            f"user {user.uid}:{user.gid} is not mapped in this rootless container's user "
            "namespace (only root is, unless /etc/subuid and /etc/subgid give the caller a range "
            "and newuidmap/newgidmap are installed)"
        ) from None


def _exec_command(spec: ContainerSpec, process: Process, home: str) -> NoReturn:
    env = dict(item.split("=", 1) for item in process.env if "=" in item)
    env.setdefault("HOSTNAME", spec.effective_hostname)
    env.setdefault("HOME", home)
    argv = list(process.args)
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        raise SetupError(
            f'exec: "{argv[0]}": executable file not found in $PATH', EXIT_NOT_FOUND
        ) from None
    except PermissionError:
        raise SetupError(f'exec: "{argv[0]}": permission denied', EXIT_NOT_EXECUTABLE) from None
    except OSError as error:
        code = EXIT_NOT_EXECUTABLE if error.errno == errno.ENOEXEC else EXIT_NOT_FOUND
        raise SetupError(f'exec: "{argv[0]}": {error.strerror}', code) from None


# Written on the error pipe just before exec: the supervisor records "running" while the kernel
# loads the command, instead of after (a JSON report may still follow if the exec fails).
EXEC_MARKER = b"\0"


def enter_process(
    spec: ContainerSpec, process: Process, cap_last: int, seccomp_filter: Any,
    announce_fd: int | None = None,
) -> NoReturn:
    """From a root-privileged process inside the container's root to the user's command.

    Shared by the container's PID 1 and by ``exec``: user lookup, workdir, privileges, seccomp,
    fds, exec — in that order, because each step needs what the next one takes away.
    """
    try:
        user = users.resolve(process.user)
    except users.UnknownUser as error:
        raise SetupError(str(error)) from None
    _enter_workdir(process.cwd)
    _drop_privileges(spec, cap_last, user)
    # Seccomp last: the filter would refuse the mounts and unshare done before.
    if seccomp_filter is not None:
        seccomp_filter.load()
    # Mark every fd above 2 close-on-exec (the error pipe included): no host directory or
    # socket may leak into the container through /proc/self/fd.
    libc.close_range(3, 0xFFFFFFFF, libc.CLOSE_RANGE_CLOEXEC)
    libc.prctl(libc.PR_SET_DUMPABLE, 1)
    trace.mark("I exec", _trace_fd)
    if announce_fd is not None:
        os.write(announce_fd, EXEC_MARKER)
    _exec_command(spec, process, user.home)


def seccomp_filter_for(spec: ContainerSpec) -> Any:
    """The compiled filter for the spec's capability set, made once per process.

    A forked init inherits what its parents compiled: the fork server compiles Docker's default
    set once, so neither a supervisor nor a pre-warmed init pays for it on a container's start.
    """
    if not spec.seccomp:
        return None
    key = tuple(sorted(spec.capabilities))
    if key not in _filter_cache:
        from nbdock.runtime.linux import seccomp

        _filter_cache[key] = seccomp.cached_default_filter(spec.capabilities)
    return _filter_cache[key]


_filter_cache: dict[tuple[str, ...], Any] = {}
_trace_fd: int | None = None


def _receive_plan(plan_fd: int) -> InitPlan:
    """A pre-warmed init learns which container it is: the pickled plan, sent once, then EOF.

    EOF with nothing sent means the pool is being emptied: leave quietly.
    """
    import pickle  # already imported by the fork server that forked us: a dict lookup here

    chunks = []
    while chunk := os.read(plan_fd, 1 << 16):
        chunks.append(chunk)
    os.close(plan_fd)
    if not chunks:
        os._exit(0)
    plan: InitPlan = pickle.loads(b"".join(chunks))
    plan.seccomp_filter = seccomp_filter_for(plan.spec)  # read before pivot_root hides the cache
    return plan


def _isolate(unshare_flags: int) -> None:
    """Every namespace but the cgroup one, private propagation, ``lo`` up.

    The cgroup namespace waits: its root is the cgroup we are in when it is made, and the
    supervisor may still be moving us (on cgroup v1 that move can take >10 ms: the kernel waits
    for an RCU grace period). None of this, nor the filesystem after it, needs the move done.
    """
    libc.unshare(unshare_flags & ~libc.CLONE_NEWCGROUP)
    trace.mark("I namespaces made", _trace_fd)
    # Private propagation first, so nothing we mount reaches the host's namespace.
    mounts.make_rootfs_private()
    if unshare_flags & libc.CLONE_NEWNET:
        _bring_up_loopback()


def run(
    unshare_flags: int, sync_fd: int, error_fd: int, plan: InitPlan | None = None, plan_fd: int = -1
) -> NoReturn:
    """Become the container. Never returns: exec's the command or exits with a Docker code.

    Everything that does not depend on which container this is comes first: the namespaces,
    private propagation and ``lo``. A pre-warmed init (``plan`` None) then waits on ``plan_fd``
    until the pool hands it a container; a direct start has its plan already.
    """
    global _trace_fd
    try:
        _trace_fd = trace.open_fd()
        # Die with the supervisor: a SIGKILLed engine must not leave a running container behind.
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        # Not dumpable until exec: no one can ptrace or read our memory while we hold host fds.
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        libc.set_process_name("nbdock-init")  # until exec names it after the command
        trace.mark("I process started", _trace_fd)
        _isolate(unshare_flags)
        if plan is None:  # pre-warmed (pool.py): wait, with private memory, for a container
            # Imported here (before pivot_root): pool.py, which forked us, has it loaded already,
            # and a direct start (every CLI run) does not need it.
            from nbdock.runtime.linux import prefault

            prefault.populate_private_memory()  # while nobody waits (see prefault.py)
            plan = _receive_plan(plan_fd)
            trace.mark("I plan received", _trace_fd)
        _setup_filesystem(plan)
        trace.mark("I filesystem ready", _trace_fd)
        libc.sethostname(plan.spec.effective_hostname)
        # Now wait until we are in our cgroup: only then may we unshare the cgroup namespace,
        # whose root is the cgroup we are in at that moment, and run anything of the user's.
        if os.read(sync_fd, 1) != b"1":
            os._exit(EXIT_SETUP_FAILED)
        os.close(sync_fd)
        if unshare_flags & libc.CLONE_NEWCGROUP:
            libc.unshare(libc.CLONE_NEWCGROUP)
        enter_process(plan.spec, plan.spec.process, plan.cap_last, plan.seccomp_filter, error_fd)
    except SetupError as error:
        report_and_exit(error_fd, str(error), error.exit_code)
    except OSError as error:
        report_and_exit(error_fd, f"container init: {error}", EXIT_SETUP_FAILED)
    except BaseException as error:  # noqa: BLE001 - a child must never unwind into the caller
        report_and_exit(error_fd, f"container init: {_where(error)}: {error!r}", 125)


def _where(error: BaseException) -> str:
    """file:line of the innermost frame: enough to find a bug without the traceback module."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
