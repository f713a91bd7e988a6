"""Linux capabilities: names to bits, and the drop sequence a container's init performs.

Why the order: the bounding set is dropped first (it needs CAP_SETPCAP, which we still hold), then
ambient capabilities are cleared, and ``capset`` sets the final effective/permitted/inheritable
sets last. For a non-root user Docker keeps only the bounding set; effective and permitted are
empty, so the process gains nothing even if it runs a setuid-free binary.
"""

from __future__ import annotations

from collections.abc import Iterable

from nbdock.errors import InvalidArgument
from nbdock.runtime.linux import libc

CAPABILITY_BITS: dict[str, int] = {
    name: bit
    for bit, name in enumerate(
        (
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
            "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
            "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
            "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
        )
    )
}


def last_cap() -> int:
    """The highest capability this kernel knows (bits above it cannot be dropped or set)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            return int(handle.read())
    except OSError:
        return max(CAPABILITY_BITS.values())


def capability_mask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        key = name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}"
        if key not in CAPABILITY_BITS:
            raise InvalidArgument(f"unknown capability {name!r}", hint="e.g. CAP_NET_ADMIN")
        mask |= 1 << CAPABILITY_BITS[key]
    return mask


def drop_bounding_and_ambient(keep: int, highest: int) -> None:
    """Drop every capability outside ``keep`` from the bounding set and clear ambient ones.

    Must run while CAP_SETPCAP is still effective, i.e. before switching to a non-root user.
    ``highest`` is read from /proc before pivot_root, since /proc/sys is read-only or masked later.
    """
    for bit in range(highest + 1):
        if not keep & (1 << bit):
            try:
                libc.prctl(libc.PR_CAPBSET_DROP, bit)
            except OSError as error:
                if error.errno != 22:  # EINVAL: the kernel does not know this capability
                    raise
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)


def set_process_caps(keep: int, as_root_user: bool) -> None:
    """Final effective/permitted/inheritable sets: ``keep`` for root, nothing for other users."""
    if as_root_user:
        libc.capset(keep, keep, 0)
    else:
        libc.capset(0, 0, 0)
