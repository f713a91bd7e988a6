"""Shared pieces of the seccomp tests: the binding, the x86 ABIs, building a filter or skipping."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nbdock.errors import UnsupportedFeature
from nbdock.runtime.linux.seccomp import SeccompFilter, build_default_filter
from tests.conftest import conformance_dir, need

try:
    import pyseccomp
except (ImportError, RuntimeError):  # RuntimeError: the binding found no libseccomp.so
    pyseccomp = None

EPERM, ENOSYS = 1, 38


@dataclass(frozen=True)
class Abi:
    name: str
    audit_arch: int  # seccomp_data.arch as the kernel reports it
    bits: int  # width of the syscall arguments libseccomp compares
    base: int  # x32 numbers carry __X32_SYSCALL_BIT

    @property
    def scmp_arch(self) -> int:
        return {"x86_64": pyseccomp.Arch.X86_64, "x86": pyseccomp.Arch.X86,
                "x32": pyseccomp.Arch.X32}[self.name]

    def resolve(self, name: str) -> int:
        """The syscall's number on this ABI per libseccomp; negative when it has none."""
        return pyseccomp.resolve_syscall(self.scmp_arch, name)


X86_64 = Abi("x86_64", 0xC000003E, 64, 0)
X86 = Abi("x86", 0x40000003, 32, 0)
X32 = Abi("x32", 0xC000003E, 32, 0x40000000)
ABIS = (X86_64, X86, X32)


def build(capabilities: Iterable[str]) -> SeccompFilter:
    need(pyseccomp is not None, "libseccomp and the pyseccomp binding")
    try:
        return build_default_filter(capabilities)
    except UnsupportedFeature as exc:
        need(False, str(exc))
        raise


def moby_profile_path() -> Path:
    return conformance_dir("moby-seccomp") / "default.json"
