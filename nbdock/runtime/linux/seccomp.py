"""The default seccomp filter: compiled with libseccomp before pivot_root, loaded just before exec.

Why an allow list (default action ``EPERM``) rather than "allow everything but a deny list":
every kernel release adds syscalls, and new ones have repeatedly been ways around a container's
walls (``open_tree``/``move_mount``/``fsopen`` reach the mount table without ``mount``,
``io_uring`` re-implements half the syscall table, ``clone3`` hides its flags from filters). An
allow list refuses them until someone has looked at them; a deny list lets them through silently.
It is also Docker's model, so programs see the same errors here as under Docker
(``seccomp_profile.py`` holds the list and explains its groups).

How the filter is made, and why in that shape:

* Three ABIs reach an x86_64 kernel: x86_64 itself, i386 (``int 0x80`` or 32-bit binaries) and
  x32. Each has its own syscall numbers, so the filter carries a section per ABI; a call from any
  other ABI kills the process (unreachable on x86_64, but never allowed by accident).
* libseccomp's table may be older than the kernel (Debian 12: 2.5.4, which stops at syscall 456).
  Allowed syscalls it cannot name are added by their x86_64 number; that only works in a filter
  whose single ABI is the native one, so the x86_64 part and the i386/x32 part are built as two
  libseccomp filters and merged.
* Syscall numbers above the highest one the profile knows, up to 511, fail with ``ENOSYS`` rather
  than ``EPERM`` (what runc does for Docker): a future libc then takes its fallback path, instead
  of failing the way early ``faccessat2`` and ``clone3`` users did under older profiles.
* The BPF program is generated once, in ``build_default_filter``, and kept as bytes. ``load()``
  hands exactly those bytes to ``prctl(PR_SET_SECCOMP)``: no library loading, allocation or file
  access after pivot_root, and the program the tests inspect is the program the kernel runs.
* libseccomp is told not to touch ``no_new_privs``: the runtime sets it itself, as its own step.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdock._paths import run_root
from nbdock.errors import RuntimeFailure, UnsupportedFeature

if TYPE_CHECKING:
    from nbdock.runtime.linux import seccomp_profile as profile

# Python's built-in sha256 for the cache key and checksum (a few kB): ``hashlib`` loads OpenSSL,
# ~2 ms of every ``nbdock run``.
try:
    from _sha2 import sha256  # type: ignore  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # type: ignore  # Python 3.11
    except ImportError:
        from hashlib import sha256

# pyseccomp is imported on first compile only (``_library``): it runs ``ldconfig -p`` to find
# the library (~45 ms), and ``cached_default_filter`` usually needs no compile at all.
_scmp: Any = None
_SCMP_MISSING = ""

__all__ = ["SeccompFilter", "build_default_filter", "cached_default_filter", "normalize_capability"]

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong)
_prctl.restype = ctypes.c_int

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_BPF_INSTRUCTION_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
_BPF_MAXINSNS = 4096  # the kernel's limit for one classic BPF program
_HIGHEST_ENOSYS = 511  # 512..547 are x32's legacy numbers, which x86_64 code cannot call anyway


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class SeccompFilter:
    """A compiled seccomp program, ready to load into the current process."""

    def __init__(self, program: bytes) -> None:
        count, rest = divmod(len(program), _BPF_INSTRUCTION_SIZE)
        if rest or not 0 < count <= _BPF_MAXINSNS:
            # Refused here, in the engine, rather than by the kernel inside the container's setup.
            raise RuntimeFailure(f"not a loadable classic BPF program ({len(program)} bytes)")
        self._program = program
        # Everything load() passes to the kernel is built now, while Python may still allocate
        # and import freely.
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(count, ctypes.cast(self._buffer, ctypes.c_void_p))
        self._fprog_ref = ctypes.byref(self._fprog)

    def load(self) -> None:
        """Install the filter on the calling thread; it stays for this process and its children.

        Needs ``no_new_privs`` set first (or CAP_SYS_ADMIN): the kernel refuses a filter that a
        setuid binary could inherit otherwise. Does no file access and no import.
        """
        if _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self._fprog_ref, 0, 0) == 0:
            return
        err = ctypes.get_errno()
        reason = os.strerror(err)
        if err == errno.EACCES:
            reason += " (set no_new_privs before loading the filter)"
        raise RuntimeFailure(f"cannot load the seccomp filter: {reason}")

    def export_bpf(self) -> bytes:
        """The raw classic BPF program (``struct sock_filter`` array, native byte order)."""
        return self._program

    def __len__(self) -> int:
        """Number of BPF instructions (the kernel accepts at most 4096)."""
        return len(self._program) // _BPF_INSTRUCTION_SIZE

    def __repr__(self) -> str:
        return f"SeccompFilter({len(self)} instructions)"


def build_default_filter(capabilities: Iterable[str]) -> SeccompFilter:
    """Compile nbdock's default profile for a container holding ``capabilities``.

    Capability names may be given as ``CAP_SYS_ADMIN`` or ``sys_admin``. Call it before
    pivot_root; the result is immutable, so one compilation serves any number of containers.
    """
    caps = frozenset(normalize_capability(name) for name in capabilities)
    return SeccompFilter(_compile(caps))


def normalize_capability(name: str) -> str:
    """``sys_admin`` and ``CAP_SYS_ADMIN`` name the same capability (Docker accepts both)."""
    upper = name.strip().upper()
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def cached_default_filter(capabilities: Iterable[str], cache_dir: Path | None = None) -> SeccompFilter:
    """``build_default_filter``, remembered on disk across processes.

    Why: compiling costs ~25 ms plus ~45 ms to import pyseccomp, on every ``nbdock run`` from a
    fresh CLI process. The program is a pure function of the profile's source, the capability
    set and libseccomp's build, so those name the cache file; a changed profile is a new file.
    A hit needs neither pyseccomp nor the profile module (its source is hashed as a file).
    """
    caps = frozenset(normalize_capability(name) for name in capabilities)
    cache_dir = cache_dir or run_root() / "cache"
    path = cache_dir / f"seccomp-{_cache_key(caps)}.bpf"
    try:
        stored = path.read_bytes()
        program, checksum = stored[:-32], stored[-32:]
        if sha256(program).digest() == checksum:
            return SeccompFilter(program)
    except (OSError, RuntimeFailure):
        pass
    program = _compile(caps)
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(program + sha256(program).digest())
    os.replace(temp, path)  # readers see the whole program or none
    return SeccompFilter(program)


# What the program is compiled from: this module and the profile, hashed as files so that a
# cache hit imports neither (the profile's tables and classes cost every start ~1.3 ms).
KEY_SOURCES = (Path(__file__), Path(__file__).with_name("seccomp_profile.py"))


def _cache_key(capabilities: frozenset[str]) -> str:
    digest = sha256()
    for source in KEY_SOURCES:
        digest.update(source.read_bytes())
    for library in ("/usr/lib/x86_64-linux-gnu/libseccomp.so.2", "/lib/x86_64-linux-gnu/libseccomp.so.2"):
        if os.path.exists(library):
            digest.update(os.path.realpath(library).encode())
            break
    digest.update(",".join(sorted(capabilities)).encode())
    return digest.hexdigest()[:32]


def _library() -> Any:
    global _scmp, _SCMP_MISSING
    if _scmp is None and not _SCMP_MISSING:
        try:
            import pyseccomp

            _scmp = pyseccomp
        except (ImportError, RuntimeError) as exc:  # RuntimeError: no libseccomp.so found
            _SCMP_MISSING = str(exc)
    return _scmp


@functools.lru_cache(maxsize=16)
def _compile(capabilities: frozenset[str]) -> bytes:
    """The BPF program for one capability set; a pure function, so its result is remembered."""
    if _library() is None:
        raise UnsupportedFeature(
            f"seccomp needs libseccomp (install libseccomp2): {_SCMP_MISSING}"
        )
    if _scmp.system_arch() != _scmp.Arch.X86_64:
        raise UnsupportedFeature("the default seccomp profile is written for x86_64 only")
    from nbdock.runtime.linux import seccomp_profile as profile

    try:
        native = _new_filter(_scmp.Arch.X86_64)
        compat = _new_filter(_scmp.Arch.X86, _scmp.Arch.X32)
        for rule in profile.rules_for(capabilities):
            _add_rule(native, compat, rule)
        _add_enosys_tail(native)
        native.merge(compat)
        return _export(native)
    except OSError as exc:
        raise RuntimeFailure(f"libseccomp could not build the seccomp filter: {exc}") from exc


def _new_filter(*arches: int) -> _scmp.SyscallFilter:
    scf = _scmp.SyscallFilter(_scmp.ERRNO(errno.EPERM))
    scf.set_attr(_scmp.Attr.CTL_NNP, 0)
    scf.set_attr(_scmp.Attr.ACT_BADARCH, _scmp.KILL_PROCESS)
    try:
        # A binary search over syscall numbers instead of ~400 comparisons in a row.
        scf.set_attr(_scmp.Attr.CTL_OPTIMIZE, 2)
    except OSError:
        pass  # libseccomp < 2.5: same decisions, linear order
    if arches[0] != _scmp.Arch.X86_64:
        scf.remove_arch(_scmp.Arch.NATIVE)
    for arch in arches:
        if not scf.exist_arch(arch):
            scf.add_arch(arch)
    return scf


def _action(rule: profile.Rule) -> int:
    return _scmp.ALLOW if rule.errno is None else _scmp.ERRNO(rule.errno)


def _arg(check: profile.ArgCheck) -> _scmp.Arg:
    ops = {"eq": _scmp.EQ, "lt": _scmp.LT, "gt": _scmp.GT, "masked_eq": _scmp.MASKED_EQ}
    if check.op == "masked_eq":
        return _scmp.Arg(check.index, ops[check.op], check.value, check.expected)
    return _scmp.Arg(check.index, ops[check.op], check.value)


def _add_rule(native: _scmp.SyscallFilter, compat: _scmp.SyscallFilter, rule: profile.Rule) -> None:
    from nbdock.runtime.linux import seccomp_profile as profile

    action = _action(rule)
    args = [_arg(check) for check in rule.args]
    for name in rule.names:
        number = _resolve(_scmp.Arch.X86_64, name)
        if number >= 0:
            native.add_rule(action, number, *args)
        elif name in profile.X86_64_NUMBERS:
            native.add_rule(action, profile.X86_64_NUMBERS[name], *args)
        if _resolve(_scmp.Arch.X86, name) >= 0 or _resolve(_scmp.Arch.X32, name) >= 0:
            compat.add_rule(action, name, *args)


def _resolve(arch: int, name: str) -> int:
    """The syscall's number on ``arch``; negative when libseccomp has none, or only a pseudo one."""
    return int(_scmp.resolve_syscall(arch, name))


def _add_enosys_tail(native: _scmp.SyscallFilter) -> None:
    from nbdock.runtime.linux import seccomp_profile as profile

    known = [_resolve(_scmp.Arch.X86_64, name) for name in profile.all_names()]
    known.extend(profile.X86_64_NUMBERS.values())
    for number in range(max(known) + 1, _HIGHEST_ENOSYS + 1):
        native.add_rule(_scmp.ERRNO(errno.ENOSYS), number)


def _export(scf: _scmp.SyscallFilter) -> bytes:
    fd = os.memfd_create("nbdock-seccomp", os.MFD_CLOEXEC)
    try:
        with open(fd, "rb", closefd=False) as handle:
            scf.export_bpf(handle)
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
