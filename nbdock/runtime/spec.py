"""What a container is, as plain data (the role of an OCI runtime spec's config.json).

The runtime never sees an image: the engine turns an image config plus the user's options into a
``ContainerSpec``, and the runtime turns the spec into an isolated process. Validation is a list of
small check functions, as runc does it, so each rule is named and tested on its own.
"""

from __future__ import annotations

import json
import posixpath
import signal
from collections.abc import Callable
from typing import Any

from nbdock._types import NetworkMode
from nbdock.errors import InvalidArgument
from nbdock.runtime._plain import Frozen

# Docker's default capability set for a container (moby's oci/caps/defaults.go).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Docker masks these so a container cannot read host kernel details through /proc and /sys.
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
# The device nodes of a container's /dev (name, major, minor): never the host's /dev.
DEVICES: tuple[tuple[str, int, int], ...] = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)
# ...and makes these read-only, so a container cannot retune the host kernel.
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# Docker's container names, [a-zA-Z0-9][a-zA-Z0-9_.-]+ (names become file names in the runtime's
# name index). Checked with str methods: compiling the regexp cost every start ~0.25 ms.
_NAME_PUNCTUATION = str.maketrans("", "", "_.-")


def valid_name(name: str) -> bool:
    """Whether ``name`` is a name Docker accepts for a container (at least two characters)."""
    rest = name[1:].translate(_NAME_PUNCTUATION)
    return len(name) >= 2 and name.isascii() and name[0].isalnum() and (not rest or rest.isalnum())


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Mount(Frozen):
    """A bind mount of a host path or a fresh tmpfs, placed at ``target`` in the container."""

    __slots__ = ("target", "type", "source", "readonly", "options")
    target: str
    type: str  # "bind" | "tmpfs"
    source: str
    readonly: bool
    options: tuple[str, ...]

    def __init__(
        self, target: str, type: str = "bind", source: str = "", readonly: bool = False,
        options: tuple[str, ...] = (),
    ) -> None:
        self._set(target=target, type=type, source=source, readonly=readonly, options=options)


class Limits(Frozen):
    """cgroup limits; ``None`` means unlimited, as in Docker."""

    __slots__ = ("memory_bytes", "cpus", "pids")
    memory_bytes: int | None
    cpus: float | None
    pids: int | None

    def __init__(
        self, memory_bytes: int | None = None, cpus: float | None = None, pids: int | None = None
    ) -> None:
        self._set(memory_bytes=memory_bytes, cpus=cpus, pids=pids)

    def any(self) -> bool:
        return any(v is not None for v in (self.memory_bytes, self.cpus, self.pids))


class Process(Frozen):
    """The command to run: argv, environment (``K=V`` strings), cwd, and the user.

    ``user`` is Docker's ``USER[:GROUP]`` text; it is resolved against the container's own
    /etc/passwd and /etc/group after pivot_root, never the host's.
    """

    __slots__ = ("args", "env", "cwd", "user")
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str

    def __init__(
        self, args: tuple[str, ...], env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",), cwd: str = "/",
        user: str = "",
    ) -> None:
        self._set(args=args, env=env, cwd=cwd, user=user)


_NO_LIMITS = Limits()


class ContainerSpec(Frozen):
    """Everything the runtime needs to create one container (immutable; ``replace`` copies)."""

    __slots__ = (
        "id", "process", "layers", "name", "hostname", "mounts", "readonly_rootfs", "limits",
        "network", "capabilities", "seccomp", "stop_signal", "annotations",
    )
    id: str
    process: Process
    layers: tuple[str, ...]  # read-only layer directories, bottom (base) first
    name: str
    hostname: str
    mounts: tuple[Mount, ...]
    readonly_rootfs: bool
    limits: Limits
    network: NetworkMode
    capabilities: tuple[str, ...]
    seccomp: bool
    stop_signal: int
    # Opaque to the runtime; the engine keeps the image reference, command text, labels here.
    annotations: dict[str, str]

    def __init__(
        self,
        id: str,
        process: Process,
        layers: tuple[str, ...],
        name: str = "",
        hostname: str = "",
        mounts: tuple[Mount, ...] = (),
        readonly_rootfs: bool = False,
        limits: Limits = _NO_LIMITS,
        network: NetworkMode = "none",
        capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES,
        seccomp: bool = True,
        stop_signal: int = int(signal.SIGTERM),
        annotations: dict[str, str] | None = None,
    ) -> None:
        self._set(
            id=id, process=process, layers=layers, name=name, hostname=hostname, mounts=mounts,
            readonly_rootfs=readonly_rootfs, limits=limits, network=network,
            capabilities=capabilities, seccomp=seccomp, stop_signal=stop_signal,
            annotations={} if annotations is None else annotations,
        )

    @property
    def effective_hostname(self) -> str:
        return self.hostname or self.id[:12]

    def to_json(self) -> str:
        """spec.json: every field, nested records as objects (what ``dataclasses.asdict`` made).

        Compact: with ``indent`` json uses its pure-Python encoder (3.5x slower, on every start);
        files written indented by earlier versions read the same.
        """
        fields = self.as_dict()
        fields["process"] = self.process.as_dict()
        fields["mounts"] = [mount.as_dict() for mount in self.mounts]
        fields["limits"] = self.limits.as_dict()
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ContainerSpec:
        raw: dict[str, Any] = json.loads(text)
        raw["process"] = Process(**{k: _tuple(v) for k, v in raw["process"].items()})
        raw["mounts"] = tuple(Mount(**{k: _tuple(v) for k, v in m.items()}) for m in raw["mounts"])
        raw["limits"] = Limits(**raw["limits"])
        for key in ("layers", "capabilities"):
            raw[key] = tuple(raw[key])
        return cls(**raw)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# --------------------------------------------------------------------------- validation
def _check_args(spec: ContainerSpec) -> None:
    if not spec.process.args or not spec.process.args[0]:
        raise InvalidArgument(
            "no command specified", hint="give a command after the image, or set CMD/ENTRYPOINT"
        )


def _check_cwd(spec: ContainerSpec) -> None:
    if not posixpath.isabs(spec.process.cwd):
        raise InvalidArgument(
            f"working directory {spec.process.cwd!r} is not absolute", hint="use e.g. -w /app"
        )


def _check_mounts(spec: ContainerSpec) -> None:
    for mount in spec.mounts:
        if not posixpath.isabs(mount.target):
            raise InvalidArgument(f"mount target {mount.target!r} is not an absolute path")
        if posixpath.normpath(mount.target) == "/":
            raise InvalidArgument("cannot mount over the container's root directory")
        if mount.type == "bind" and not posixpath.isabs(mount.source):
            raise InvalidArgument(f"bind source {mount.source!r} is not an absolute host path")
        if mount.type not in ("bind", "tmpfs"):
            raise InvalidArgument(f"unknown mount type {mount.type!r}", hint="use bind or tmpfs")


def _check_limits(spec: ContainerSpec) -> None:
    limits = spec.limits
    if limits.memory_bytes is not None and limits.memory_bytes < 6 * 1024 * 1024:
        raise InvalidArgument(
            "minimum memory limit allowed is 6MB", hint="use e.g. --memory 32m"
        )
    if limits.cpus is not None and limits.cpus <= 0:
        raise InvalidArgument("--cpus must be a positive number", hint="e.g. --cpus 0.5")
    if limits.pids is not None and limits.pids == 0:
        raise InvalidArgument("--pids-limit must be positive, or -1 for unlimited")


def _check_name(spec: ContainerSpec) -> None:
    if spec.name and not valid_name(spec.name):
        raise InvalidArgument(
            f"invalid container name {spec.name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, "
            "at least two characters", hint="e.g. --name my-app",
        )


def _check_hostname(spec: ContainerSpec) -> None:
    name = spec.effective_hostname
    if len(name) > 64 or not name.replace("-", "").replace(".", "").isalnum():
        raise InvalidArgument(f"invalid hostname {name!r}", hint="use letters, digits, - and .")


CHECKS: tuple[Callable[[ContainerSpec], None], ...] = (
    _check_args,
    _check_name,
    _check_cwd,
    _check_mounts,
    _check_limits,
    _check_hostname,
)


def validate(spec: ContainerSpec) -> None:
    """Raise ``InvalidArgument`` for the first rule the spec breaks."""
    for check in CHECKS:
        check(spec)
