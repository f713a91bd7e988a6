"""The container's PID 1: what it must do (``InitPlan``), sent to ``nbdock-init`` which does it.

The supervisor works out the plan and spawns ``native/*.c`` (``nbdock-init``) into the
container's fresh PID namespace; the program makes the namespaces, the filesystem, drops
privileges, loads the seccomp filter and exec's the user's command, in that order. Why a C
program: in a forked Python process most of that time went to copy-on-write faults of the
interpreter's heap; see native/main.c. Any failure comes back as JSON on the error pipe
(close-on-exec, so a successful exec closes it: EOF = started, after the one-byte exec marker).

``enter_process`` is the same last stretch (user, workdir, caps, seccomp, exec) in Python, for
``exec`` into a running container (``exec.py``).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from nbdock.runtime import trace
from nbdock.runtime._plain import Plain
from nbdock.runtime.linux import caps, libc, userns
from nbdock.runtime.spec import DEVICES, MASKED_PATHS, READONLY_PATHS, ContainerSpec, Process

# Exit codes with Docker's meaning: setup failed, command not executable, command not found.
EXIT_SETUP_FAILED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class InitPlan(Plain):
    """Everything the init needs, computed by the supervisor before the spawn.
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
        etc_files: dict[str, tuple[str, str]],  # container path -> (host file, its content)
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


def read_report(data: bytes) -> dict[str, Any] | None:
    """What the error pipe said: None if the command was exec'd, else the failure's JSON.

    nbdock-init writes ``EXEC_MARKER`` just before exec; a report may still follow it if the
    exec itself failed (command not found, not executable).
    """
    body = data.lstrip(EXEC_MARKER)
    return json.loads(body) if body else None


# Written on the error pipe just before exec: the supervisor records "running" while the kernel
# loads the command, instead of after (a JSON report may still follow if the exec fails).
EXEC_MARKER = b"\0"


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


# --------------------------------------------------------------------------- the plan, on the wire
# nbdock-init (native/plan.c) reads records of (1-byte tag, u32 little-endian length, bytes): first
# the part every container of a kind shares, length-prefixed and ended by b".", then this
# container's part until EOF. A pre-warmed init gets the first part when it is made and the rest
# when a container is assigned to it.
_RECORD_HEAD = struct.Struct("<cI")


def _record(tag: bytes, value: str | bytes = b"") -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _RECORD_HEAD.pack(tag, len(data)) + data


def isolation_part(unshare_flags: int) -> bytes:
    """Namespaces, private propagation, ``lo``: what a pre-warmed init does before it waits."""
    records = [_record(b"U", str(unshare_flags))]
    if unshare_flags & libc.CLONE_NEWNET:
        records.append(_record(b"L"))
    trace_path = os.environ.get(trace.TRACE_ENV)
    if trace_path:
        records.append(_record(b"T", trace_path))
    records.append(_record(b"."))
    body = b"".join(records)
    return struct.pack("<I", len(body)) + body


def container_part(plan: InitPlan) -> bytes:
    """This container: its filesystem and hostname, then ``process_part``. Every policy list
    (devices, masks) is sent from here: spec.py stays their one source of truth."""
    spec = plan.spec
    out = [
        _record(b"R", plan.rootfs), _record(b"u", plan.upper), _record(b"w", plan.work),
        *(_record(b"l", layer) for layer in reversed(spec.layers)),  # top-most first
        # Rootless: overlay metadata in user.* xattrs, device nodes bound from the host.
        _record(b"x") if plan.in_userns else _record(b"k"),
    ]
    if spec.network != "host":
        out.append(_record(b"n"))  # a sysfs of our own network namespace
    out.append(_STATIC_RECORDS)
    out += [
        _record(b"e", f"{target}\0{source}\0{content}")
        for target, (source, content) in plan.etc_files.items()
    ]
    for mount in spec.mounts:
        fields = (mount.type, mount.source, mount.target, "1" if mount.readonly else "0",
                  ",".join(mount.options))
        out.append(_record(b"V", "\0".join(fields)))
    if spec.readonly_rootfs:
        out.append(_record(b"X"))
    out.append(_record(b"H", spec.effective_hostname))
    out.append(process_part(spec, spec.process, plan.cap_last, plan.seccomp_filter))
    return b"".join(out)


def process_part(spec: ContainerSpec, process: Process, cap_last: int, seccomp_filter: Any) -> bytes:
    """User, working directory, capabilities, seccomp filter, command and environment: the last
    stretch, shared by a container's PID 1 and by ``exec`` into it."""
    out = [
        _record(b"G", process.user or ""), _record(b"W", process.cwd),
        _record(b"K", str(_capability_mask(spec.capabilities))), _record(b"Z", str(cap_last)),
    ]
    if seccomp_filter is not None:
        out.append(_bpf_record(seccomp_filter))
    out += [_record(b"a", arg) for arg in process.args]
    # Docker's environment: later duplicates win, entries without "=" are dropped, HOSTNAME is
    # always set; HOME too, by the init, once it knows the user's home directory.
    env = dict(item.split("=", 1) for item in process.env if "=" in item)
    env.setdefault("HOSTNAME", spec.effective_hostname)
    out += [_record(b"v", f"{key}={value}") for key, value in env.items()]
    return b"".join(out)


def exec_plan(
    spec: ContainerSpec, process: Process, cap_last: int, seccomp_filter: Any,
    join: tuple[int, list[str], list[str]],
) -> bytes:
    """The whole plan for ``exec``: no namespaces to make, no filesystem, no hostname; instead
    ``join`` = (the container's PID 1, its namespaces in joining order, its cgroup.procs files)."""
    pid, namespaces, cgroup_procs = join
    records = [_record(b"J", str(pid))]
    records += [_record(b"N", name) for name in namespaces]
    records += [_record(b"P", path) for path in cgroup_procs]
    return isolation_part(0) + b"".join(records) + process_part(spec, process, cap_last, seccomp_filter)


def _capability_mask(names: tuple[str, ...]) -> int:
    if names not in _masks:
        _masks[names] = caps.capability_mask(names)
    return _masks[names]


def _bpf_record(seccomp_filter: Any) -> bytes:
    key = id(seccomp_filter)
    if key not in _bpf_records:  # filters live as long as the process (_filter_cache)
        _bpf_records[key] = _record(b"S", seccomp_filter.export_bpf())
    return _bpf_records[key]


_masks: dict[tuple[str, ...], int] = {}
_bpf_records: dict[int, bytes] = {}
# The same for every container: its /dev's device nodes, Docker's masked and read-only paths.
_STATIC_RECORDS = b"".join(
    [_record(b"d", f"{name}\0{major}\0{minor}") for name, major, minor in DEVICES]
    + [_record(b"m", path) for path in MASKED_PATHS]
    + [_record(b"r", path) for path in READONLY_PATHS]
)


def spawn(program: str, plan_fd: int, sync_fd: int, error_fd: int, stdout_fd: int, stderr_fd: int) -> int:
    """Start nbdock-init (``program``) with the container's pipes as stdout/stderr; its pid.

    posix_spawn (vfork + exec) instead of fork: no page tables copied, no copy-on-write faults
    in either process. Its stdin is /dev/null (Docker's, without -i). The init puts signal
    dispositions and mask back to their defaults itself (the supervisor ignores SIGPIPE and
    friends; the user's command must not inherit that), and closes every other fd at exec.
    """
    passed = [fd for fd in (plan_fd, sync_fd, error_fd) if fd >= 0]  # exec has no sync pipe
    for fd in passed:
        os.set_inheritable(fd, True)
    try:
        return os.posix_spawn(
            program,
            ["nbdock-init", str(plan_fd), str(sync_fd), str(error_fd)],
            {},
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
                (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
            ],
        )
    finally:
        for fd in passed:
            os.set_inheritable(fd, False)
