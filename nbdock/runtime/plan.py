"""What a start needs, worked out before any process is forked: where the container's files are,
the generated /etc files, which namespaces to make, whether this engine can honour the spec, and
the init's plan.

Kept apart from the supervisor because three launchers share it — a direct start (the caller or
the fork server forks a supervisor), a pre-warmed container taking its assignment (``pool.py``),
and the runtime's own checks before anything exists (``Runtime.create``).
"""

from __future__ import annotations

import os
from pathlib import Path

from nbdock.errors import UnsupportedFeature
from nbdock.runtime import init, state
from nbdock.runtime._plain import Frozen
from nbdock.runtime.linux import caps, libc, userns
from nbdock.runtime.linux.cgroups import cgroups_available
from nbdock.runtime.spec import ContainerSpec


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


def etc_files(paths: ContainerPaths, spec: ContainerSpec) -> dict[str, tuple[str, str]]:
    """/etc/hostname and /etc/hosts as Docker generates them (and the host's resolv.conf):
    container path -> (host file, content). The init writes them (in C, beside its other setup
    work: two file creations on ext4 cost ~0.3 ms) and binds them in."""
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
    etc = str(paths.etc)
    return {target: (f"{etc}/{os.path.basename(target)}", content) for target, content in files.items()}


def unshare_flags(spec: ContainerSpec) -> int:
    """The namespaces the init creates (the PID namespace is the supervisor's doing)."""
    return unshare_flags_for(spec.network)


def unshare_flags_for(network: str) -> int:
    flags = libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWIPC | libc.CLONE_NEWCGROUP
    if network != "host":
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
        etc_files=etc_files(paths, spec),
        cap_last=caps.last_cap(),
        in_userns=rootless,
        seccomp_filter=init.seccomp_filter_for(spec) if with_filter else None,
        unshare_flags=unshare_flags(spec),
        id_mapping=userns.current_mapping() if rootless else None,
    )


def adopt_caller_env(env: dict[str, str]) -> None:
    """Take the caller's ``NBDOCK_*`` settings (root, cgroup parent, trace file) for this start.

    A fork server and a pre-warmed container were forked before the request that they serve, so
    they replace theirs with the ones sent along with it.
    """
    # Only what differs: the fork server's supervision threads read these while it serves the
    # next request, and must never see a setting missing for a moment.
    for key in [k for k in os.environ if k.startswith("NBDOCK_") and k not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


POOL_CGROUP_PREFIX = "pool-"


def pool_cgroup_name() -> str:
    """``pool-<pid>-<start time>-<random>`` of the fork server making a pre-warmed container.

    The owner in the name lets a later engine start (``Runtime.cleanup``) remove at once the
    empty cgroup of a pre-warmed container whose fork server is gone (all of it SIGKILLed)
    instead of waiting for it to look abandoned.
    """
    pid = os.getpid()
    return f"{POOL_CGROUP_PREFIX}{pid}-{state.process_start_time(pid) or 0}-{os.urandom(4).hex()}"


def pool_owner_gone(cgroup_name: str) -> bool:
    """Whether ``cgroup_name`` is a pre-warmed container's whose fork server has exited."""
    if not cgroup_name.startswith(POOL_CGROUP_PREFIX):
        return False
    pid, _sep, rest = cgroup_name[len(POOL_CGROUP_PREFIX):].partition("-")
    start, _sep, _random = rest.partition("-")
    if not (pid.isdigit() and start.isdigit()):
        return False
    return not state.is_alive(int(pid), int(start))
