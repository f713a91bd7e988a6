"""nbdock's default seccomp profile, as plain data: which syscalls a container may make.

The model is an allow list (every syscall not named here fails with EPERM), grouped by what the
calls are for, so a reviewer reads "memory", "signals", "sockets" rather than 400 names in a row.
The set matches what Docker's default profile grants a container with a given capability set on
x86_64: everything ordinary programs need, and nothing that reaches past the container (mounts,
namespaces, kernel modules, keyrings, BPF, kexec, the clock, …) unless the container holds the
capability that the kernel itself would demand for it. ``seccomp.py`` turns this data into BPF.

Names are the kernel's (and libseccomp's) syscall names; i386/x32-only names such as ``chown32`` or
``socketcall`` are listed too, because the filter also covers 32-bit code running in the container.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- the calls every container may make ----------------------------------------------------------

_PATHS = (
    "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "umask",
    "open", "openat", "openat2", "creat", "name_to_handle_at", "close",
    "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
    "statfs", "statfs64", "fstatfs", "fstatfs64",
    "chmod", "fchmod", "fchmodat", "fchmodat2",
    "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32",
    "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "readlink", "readlinkat",
    "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "mknod", "mknodat",
    "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate",
    "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
    "getdents", "getdents64",
    # Reading the mount table is harmless; changing it is what CAP_SYS_ADMIN guards below.
    "statmount", "listmount",
)

_XATTRS = (
    "getxattr", "lgetxattr", "fgetxattr", "getxattrat",
    "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
    "listxattr", "llistxattr", "flistxattr", "listxattrat",
    "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
)

_FILE_IO = (
    "read", "write", "readv", "writev", "pread64", "pwrite64",
    "preadv", "preadv2", "pwritev", "pwritev2", "lseek", "_llseek",
    "dup", "dup2", "dup3", "close_range", "fcntl", "fcntl64", "ioctl", "flock",
    "pipe", "pipe2", "splice", "tee", "vmsplice", "sendfile", "sendfile64", "copy_file_range",
    "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
    "fadvise64", "fadvise64_64", "readahead", "cachestat",
    "memfd_create", "memfd_secret", "eventfd", "eventfd2", "signalfd", "signalfd4",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    # Marks on an fanotify group; creating the group (fanotify_init) needs CAP_SYS_ADMIN.
    "fanotify_mark",
    # Legacy AIO (io_uring is left out on purpose: it is a large, frequently exploited surface).
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64",
)

_POLLING = (
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
)

_MEMORY = (
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
    "mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "membarrier",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack", "mseal",
)

_PROCESSES = (
    "fork", "vfork", "execve", "execveat", "exit", "exit_group",
    "wait4", "waitid", "waitpid", "getpid", "getppid", "gettid",
    "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
    "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "restart_syscall",
    "futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue",
    "pidfd_open", "pidfd_send_signal", "process_mrelease",
    "getrusage", "times", "getcpu",
    "prctl", "arch_prctl", "get_thread_area", "set_thread_area", "modify_ldt",
    # The kernel's return-probe trampoline calls this on behalf of any traced process.
    "uretprobe",
    # Since Linux 4.8 seccomp is re-checked after a tracer changes a syscall, so ptrace can no
    # longer be used to slip past this filter (the reason older profiles banned it).
    "ptrace", "process_vm_readv", "process_vm_writev",
)

_SIGNALS = (
    "kill", "tkill", "tgkill", "pause", "alarm",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "sigaltstack", "sigreturn", "sigprocmask",
)

_CREDENTIALS = (
    "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
    "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
    # Changing ids is governed by CAP_SETUID/CAP_SETGID in the kernel; no need to filter here.
    "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid",
    "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32",
    "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32",
    "capget", "capset",
    # A process may always narrow itself further.
    "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
)

_SCHEDULING = (
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
    "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "getpriority", "setpriority", "ioprio_get", "ioprio_set",
    "getrlimit", "setrlimit", "ugetrlimit", "prlimit64",
)

_TIME = (
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep",
    # Without CAP_SYS_TIME these only read the clock's state; setting it fails in the kernel.
    "adjtimex", "clock_adjtime", "clock_adjtime64",
    "getitimer", "setitimer",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
    "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64",
)

_IPC = (
    # System V IPC lives in the container's own IPC namespace.
    "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
)

_SOCKETS = (
    # socket() itself is allowed per address family, see SOCKET_RULES.
    "socketpair", "bind", "connect", "listen", "accept", "accept4", "shutdown",
    "getsockname", "getpeername", "getsockopt", "setsockopt",
    "sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
    # i386 multiplexes every socket call (send and recv among them, which have no syscall of their
    # own on x86) through one syscall whose arguments sit in memory, out of a filter's reach; like
    # Docker we let it through rather than break 32-bit networking.
    "socketcall",
)

_SYSTEM_INFO = ("uname", "sysinfo", "getrandom")

ALWAYS_ALLOWED: tuple[str, ...] = (
    _PATHS + _XATTRS + _FILE_IO + _POLLING + _MEMORY + _PROCESSES + _SIGNALS + _CREDENTIALS
    + _SCHEDULING + _TIME + _IPC + _SOCKETS + _SYSTEM_INFO
)

# --- calls the kernel already guards with a capability -------------------------------------------
# A container holding the capability may make them; without it, the filter refuses them before the
# kernel's own check, which also shrinks the code reachable from inside (bpf, perf, mount parsing).

CAPABILITY_GRANTS: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
        "fsopen", "fsconfig", "fsmount", "fspick", "unshare", "setns", "clone", "clone3",
        "sethostname", "setdomainname", "quotactl", "quotactl_fd", "fanotify_init",
        "lookup_dcookie", "bpf", "perf_event_open", "syslog",
        "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
    ),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
}

# --- calls allowed only with some arguments ------------------------------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
# Every namespace flag clone(2) accepts (CLONE_NEWTIME only exists for clone3 and unshare).
CLONE_NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
    | CLONE_NEWNET
)

# personality(2) values a container may set: plain Linux, 32-bit Linux, each with UNAME26 (old
# software that parses the kernel version), and 0xffffffff, which only queries. Everything else
# (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, …) weakens the process's own hardening.
PERSONALITY_VALUES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

AF_ALG = 38  # the kernel's crypto API as sockets: a large attack surface few programs use
AF_NFC = 39
AF_VSOCK = 40  # host <-> VM sockets: would talk to the hypervisor, past the container


@dataclass(frozen=True)
class ArgCheck:
    """One comparison on a syscall argument: ``arg[index] <op> value`` (``op`` per libseccomp).

    For ``masked_eq`` the test is ``arg[index] & value == expected``.
    """

    index: int
    op: str  # "eq", "lt", "gt" or "masked_eq"
    value: int
    expected: int = 0


@dataclass(frozen=True)
class Rule:
    """Let ``names`` through (``errno`` None) or fail them with ``errno``, if all ``args`` hold."""

    names: tuple[str, ...]
    errno: int | None = None
    args: tuple[ArgCheck, ...] = ()


ENOSYS = 38

SOCKET_RULES = (
    Rule(("socket",), args=(ArgCheck(0, "lt", AF_ALG),)),
    Rule(("socket",), args=(ArgCheck(0, "eq", AF_NFC),)),
    Rule(("socket",), args=(ArgCheck(0, "gt", AF_VSOCK),)),
)
PERSONALITY_RULES = tuple(
    Rule(("personality",), args=(ArgCheck(0, "eq", value),)) for value in PERSONALITY_VALUES
)
# Without CAP_SYS_ADMIN: fork and threads yes, new namespaces no. clone3 takes its flags in a
# struct a filter cannot read, so it fails with ENOSYS, which makes glibc fall back to clone.
UNPRIVILEGED_CLONE_RULES = (
    Rule(("clone",), args=(ArgCheck(0, "masked_eq", CLONE_NAMESPACE_FLAGS, 0),)),
    Rule(("clone3",), errno=ENOSYS),
)

# x86_64 numbers of syscalls newer than some libseccomp releases' tables (Debian 12 ships 2.5.4,
# which stops at 456). Used only when libseccomp cannot resolve the name itself.
X86_64_NUMBERS: dict[str, int] = {
    "uretprobe": 335,
    "statmount": 457,
    "listmount": 458,
    "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460,
    "lsm_list_modules": 461,
    "mseal": 462,
    "setxattrat": 463,
    "getxattrat": 464,
    "listxattrat": 465,
    "removexattrat": 466,
}


def rules_for(capabilities: frozenset[str]) -> list[Rule]:
    """The profile for a container holding ``capabilities`` (normalized ``CAP_*`` names)."""
    rules = [Rule(ALWAYS_ALLOWED)]
    for capability, names in CAPABILITY_GRANTS.items():
        if capability in capabilities:
            rules.append(Rule(names))
    rules.extend(SOCKET_RULES)
    rules.extend(PERSONALITY_RULES)
    if "CAP_SYS_ADMIN" not in capabilities:
        rules.extend(UNPRIVILEGED_CLONE_RULES)
    return rules


def all_names() -> frozenset[str]:
    """Every syscall name the profile mentions, whatever the capabilities."""
    names = set(ALWAYS_ALLOWED)
    for granted in CAPABILITY_GRANTS.values():
        names.update(granted)
    names.update(("socket", "personality", "clone", "clone3"))
    return frozenset(names)
