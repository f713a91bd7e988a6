"""Building the default filter: the profile's names, capability handling, the program's shape."""

from __future__ import annotations

import pytest

from nbdock.errors import RuntimeFailure
from nbdock.runtime.linux import seccomp_profile
from nbdock.runtime.linux.seccomp import SeccompFilter, _compile
from nbdock.runtime.spec import DEFAULT_CAPABILITIES
from tests.unit.runtime.bpf_eval import BpfProgram, errno_action, is_allowed
from tests.unit.runtime.seccomp_support import ABIS, EPERM, X86_64, build

BPF_MAXINSNS = 4096


def test_every_profile_name_is_a_syscall_on_some_x86_abi() -> None:
    build(())  # skips/fails without libseccomp
    unknown = {
        name for name in seccomp_profile.all_names() if all(abi.resolve(name) < 0 for abi in ABIS)
    }
    # Names this libseccomp cannot resolve must come with their x86_64 number.
    assert unknown <= set(seccomp_profile.X86_64_NUMBERS)


def test_program_fits_the_kernel_limit_for_every_capability_mix() -> None:
    everything = set(seccomp_profile.CAPABILITY_GRANTS) | set(DEFAULT_CAPABILITIES)
    for caps in ((), DEFAULT_CAPABILITIES, everything):
        compiled = build(caps)
        assert 0 < len(compiled) < BPF_MAXINSNS
        assert len(compiled.export_bpf()) == 8 * len(compiled)


def test_capability_names_are_normalized() -> None:
    short = build(["sys_admin", "Chown"]).export_bpf()
    assert short == build(["CAP_SYS_ADMIN", "CAP_CHOWN"]).export_bpf()


def test_capabilities_open_their_syscalls() -> None:
    plain = BpfProgram(build(DEFAULT_CAPABILITIES).export_bpf())
    admin = BpfProgram(build([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]).export_bpf())
    for name, arg in (("mount", 0), ("unshare", 0x00020000), ("setns", 0), ("clone3", 0),
                      ("clone", 0x10000011)):
        nr = X86_64.resolve(name)
        assert not is_allowed(plain.run(nr, X86_64.audit_arch, (arg,))), name
        assert is_allowed(admin.run(nr, X86_64.audit_arch, (arg,))), name
    ptrace_only = BpfProgram(build(["CAP_SYS_PTRACE"]).export_bpf())
    assert is_allowed(ptrace_only.run(X86_64.resolve("kcmp"), X86_64.audit_arch))
    assert ptrace_only.run(X86_64.resolve("chroot"), X86_64.audit_arch) == errno_action(EPERM)


def test_seccomp_filter_rejects_a_malformed_program() -> None:
    with pytest.raises(RuntimeFailure):
        SeccompFilter(b"")
    with pytest.raises(RuntimeFailure):
        SeccompFilter(b"\x06\x00\x00\x00\x00\x00\xff")  # 7 bytes: not whole instructions
    ret_allow = b"\x06\x00\x00\x00\x00\x00\xff\x7f"
    with pytest.raises(RuntimeFailure):
        SeccompFilter(ret_allow * (BPF_MAXINSNS + 1))  # the kernel would refuse it at load
    assert len(SeccompFilter(ret_allow * BPF_MAXINSNS)) == BPF_MAXINSNS


def test_compilation_is_deterministic_and_order_free() -> None:
    first = build(DEFAULT_CAPABILITIES).export_bpf()
    _compile.cache_clear()  # compile again for real, not from the cache
    assert build(list(reversed(DEFAULT_CAPABILITIES))).export_bpf() == first


def test_disk_cache_returns_the_same_program_without_compiling(tmp_path) -> None:
    from nbdock.runtime.linux import seccomp

    first = seccomp.cached_default_filter(["CAP_CHOWN", "CAP_KILL"], tmp_path)
    files = list(tmp_path.glob("seccomp-*.bpf"))
    assert len(files) == 1
    again = seccomp.cached_default_filter(["CAP_KILL", "CAP_CHOWN"], tmp_path)
    assert again.export_bpf() == first.export_bpf() == files[0].read_bytes()[:-32]
    other = seccomp.cached_default_filter(["CAP_SYS_ADMIN"], tmp_path)
    assert other.export_bpf() != first.export_bpf()
    assert len(list(tmp_path.glob("seccomp-*.bpf"))) == 2
    for garbage in (b"garbage", b"\0" * 64):  # a corrupt cache entry is rebuilt, never loaded
        files[0].write_bytes(garbage)
        rebuilt = seccomp.cached_default_filter(["CAP_CHOWN", "CAP_KILL"], tmp_path)
        assert rebuilt.export_bpf() == first.export_bpf()


def test_disk_cache_key_follows_the_profile_source(tmp_path, monkeypatch) -> None:
    """The key hashes the profile as a file (a cache hit does not import it): the file must be
    the module's, and any edit of it must name a different cache entry."""
    from pathlib import Path

    from nbdock.runtime.linux import seccomp

    assert Path(seccomp_profile.__file__).resolve() in {p.resolve() for p in seccomp.KEY_SOURCES}
    assert Path(seccomp.__file__).resolve() in {p.resolve() for p in seccomp.KEY_SOURCES}
    caps = frozenset({"CAP_KILL"})
    before = seccomp._cache_key(caps)
    assert seccomp._cache_key(caps) == before
    copies = []
    for source in seccomp.KEY_SOURCES:
        copy = tmp_path / source.name
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(seccomp, "KEY_SOURCES", tuple(copies))
    assert seccomp._cache_key(caps) == before  # same bytes, same key
    copies[1].write_bytes(copies[1].read_bytes().replace(b'"getcwd", ', b""))
    assert seccomp._cache_key(caps) != before
    assert seccomp.normalize_capability(" kill ") == "CAP_KILL"
