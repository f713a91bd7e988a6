"""Linux capabilities: names to bits, and the kernel's highest one.

The drop sequence itself (bounding set, ambient, setuid with KEEPCAPS, capset, no_new_privs) is
the container init's, in C (``runtime/native/``): this module turns Docker's capability
names into the mask it is sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from nbdock.errors import InvalidArgument

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
