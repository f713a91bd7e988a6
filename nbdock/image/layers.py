"""Layer tars ⇄ directories: safe extraction with OCI whiteouts, and overlay upper dirs → tars.

``extract_layer`` has two modes:

``apply``
    Onto a flattened tree (the lower layers already merged in ``dest``): ``.wh.name`` deletes
    ``name``, ``.wh..wh..opq`` empties the directory's lower content. Whiteouts only hide what
    was there *before* this layer — entries of the same layer survive, in any order.
``overlay``
    Into the (empty) directory of one layer that overlayfs will use as a lower dir: whiteouts
    become overlay whiteouts (char device 0:0; the kernel lets unprivileged users create those
    since 5.8) and opaque directories get ``trusted.overlay.opaque=y`` — or ``user.overlay.opaque``
    when not root, for mounts with the ``userxattr`` option (``xattr_namespace`` chooses).

Safety: every path is resolved inside ``dest`` through ``_saferoot`` (no ``..`` above the root,
symlinks resolved as in a chroot, deletes never follow symlinks, hardlinks only to entries
inside). Hostile entries raise UnsafeLayerError. Metadata kept: mode, owners (root only), mtimes,
xattrs (never ``*.overlay.*`` from the tar, which would steer overlayfs), symlinks, hardlinks,
device nodes (root only), fifos.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from nbdock.errors import ImageStoreError, UnsafeLayerError
from nbdock.image._saferoot import SafeRoot, entry_parts, lstat_at, remove_at
from nbdock.image.difftar import diff_to_tar

__all__ = ["ExtractMode", "XattrNamespace", "diff_to_tar", "extract_layer"]

ExtractMode = Literal["apply", "overlay"]
XattrNamespace = Literal["trusted", "user"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_AUFS_META = ".wh..wh."
_CHUNK = 1 << 20
_XATTR_PAX = "SCHILY.xattr."


@dataclass
class _Dir:
    parts: tuple[str, ...]
    mode: int
    mtime_ns: int


@dataclass
class _State:
    """What this layer wrote, so its own whiteouts never hide its own entries."""

    written: set[tuple[str, ...]] = field(default_factory=set)
    ancestors: set[tuple[str, ...]] = field(default_factory=set)
    opaque: set[tuple[str, ...]] = field(default_factory=set)
    dirs: list[_Dir] = field(default_factory=list)

    def wrote(self, parts: tuple[str, ...]) -> None:
        self.written.add(parts)
        for i in range(len(parts)):
            self.ancestors.add(parts[:i])

    def owns(self, parts: tuple[str, ...]) -> bool:
        return parts in self.written or parts in self.ancestors


def extract_layer(
    source: BinaryIO,
    dest: Path,
    *,
    mode: ExtractMode = "overlay",
    xattr_namespace: XattrNamespace | None = None,
) -> None:
    """Extract the plain tar stream ``source`` into the existing directory ``dest``."""
    root = SafeRoot(dest)
    namespace = xattr_namespace or ("trusted" if root.privileged else "user")
    state = _State()
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                _extract_member(tar, member, root, state, mode, namespace)
        _finish_dirs(root, state)
    except (tarfile.TarError, EOFError) as exc:
        raise ImageStoreError(f"layer is not a valid tar archive: {exc}") from exc
    finally:
        root.close()


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root: SafeRoot,
    state: _State,
    mode: ExtractMode,
    namespace: XattrNamespace,
) -> None:
    parts = entry_parts(member.name)
    base = parts[-1] if parts else ""
    if base.startswith(WHITEOUT_PREFIX):
        _whiteout(member.name, parts, root, state, mode, namespace)
        return
    if not parts:  # the root itself ("./"): only its metadata applies
        if member.isdir():
            state.dirs.append(_Dir((), member.mode, _mtime_ns(member)))
        return
    parent_fd = root.open_dir(parts[:-1], entry=member.name, create=True, follow=True)
    assert parent_fd is not None  # create=True, follow=True always yields a directory
    try:
        _create(tar, member, root, parent_fd, base)
    finally:
        os.close(parent_fd)
    state.wrote(parts)
    if member.isdir():
        state.dirs.append(_Dir(parts, member.mode, _mtime_ns(member)))


def _create(
    tar: tarfile.TarFile, member: tarfile.TarInfo, root: SafeRoot, parent_fd: int, base: str
) -> None:
    existing = lstat_at(parent_fd, base)
    if member.isdir():
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            remove_at(parent_fd, base)
            existing = None
        if existing is None:
            os.mkdir(base, 0o700, dir_fd=parent_fd)
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
        try:
            _own(fd, member, root)
            _set_xattrs(fd, member)
        finally:
            os.close(fd)
        return  # mode and mtime are set at the end, once nothing more is written inside
    if existing is not None:
        remove_at(parent_fd, base)
    if member.isreg():
        _write_file(tar, member, root, parent_fd, base)
    elif member.issym():
        os.symlink(member.linkname, base, dir_fd=parent_fd)
        _chown_at(parent_fd, base, member, root)
        os.utime(base, ns=_times(member), dir_fd=parent_fd, follow_symlinks=False)
    elif member.islnk():
        _hardlink(member, root, parent_fd, base)
    elif member.ischr() or member.isblk() or member.isfifo():
        _special(member, root, parent_fd, base)
    # other types (GNU volume headers, ...) carry no file


def _write_file(
    tar: tarfile.TarFile, member: tarfile.TarInfo, root: SafeRoot, parent_fd: int, base: str
) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(base, flags, 0o600, dir_fd=parent_fd)
    try:
        data = tar.extractfile(member)
        if data is not None:
            with os.fdopen(os.dup(fd), "wb", buffering=0) as out:
                while chunk := data.read(_CHUNK):
                    out.write(chunk)
        _own(fd, member, root)  # chown before chmod: chown clears setuid bits
        os.chmod(fd, stat.S_IMODE(member.mode))
        _set_xattrs(fd, member)
        os.utime(fd, ns=_times(member))
    finally:
        os.close(fd)


def _hardlink(member: tarfile.TarInfo, root: SafeRoot, parent_fd: int, base: str) -> None:
    target = entry_parts(member.linkname)  # absolute targets name entries of this root
    if not target:
        raise UnsafeLayerError(member.name, "hardlink to the layer root")
    src_fd = root.open_dir(target[:-1], entry=member.name, create=False, follow=True)
    if src_fd is None:
        raise UnsafeLayerError(member.name, f"hardlink target {member.linkname!r} not found")
    try:
        os.link(target[-1], base, src_dir_fd=src_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError as exc:
        raise UnsafeLayerError(member.name, f"hardlink target {member.linkname!r} not found") from exc
    except PermissionError as exc:
        raise UnsafeLayerError(member.name, "hardlink to a directory") from exc
    finally:
        os.close(src_fd)


def _special(member: tarfile.TarInfo, root: SafeRoot, parent_fd: int, base: str) -> None:
    perm = stat.S_IMODE(member.mode)
    if member.isfifo():
        os.mkfifo(base, perm, dir_fd=parent_fd)
    elif root.privileged:
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        device = os.makedev(member.devmajor, member.devminor)
        os.mknod(base, perm | kind, device, dir_fd=parent_fd)
    else:
        return  # device nodes need CAP_MKNOD; rootless containers bind-mount /dev instead
    _chown_at(parent_fd, base, member, root)
    os.chmod(base, perm, dir_fd=parent_fd)
    os.utime(base, ns=_times(member), dir_fd=parent_fd, follow_symlinks=False)


def _whiteout(
    name: str,
    parts: tuple[str, ...],
    root: SafeRoot,
    state: _State,
    mode: ExtractMode,
    namespace: XattrNamespace,
) -> None:
    base, parent = parts[-1], parts[:-1]
    if base == OPAQUE_MARKER:
        _opaque(name, parent, root, state, mode, namespace)
        return
    if base.startswith(_AUFS_META):
        return  # aufs bookkeeping (.wh..wh.plnk, ...): not content
    victim = base[len(WHITEOUT_PREFIX) :]
    if victim in ("", ".", ".."):
        raise UnsafeLayerError(name, "whiteout does not name a file")
    if state.owns(parent + (victim,)):
        return  # whiteouts only hide lower layers, never this layer's own entries
    # Deletes never follow symlinks: a symlinked parent means there is nothing of ours to hide.
    parent_fd = root.open_dir(parent, entry=name, create=mode == "overlay", follow=False)
    if parent_fd is None:
        if mode == "overlay":
            raise UnsafeLayerError(name, "whiteout below a symlink")
        return
    try:
        if mode == "apply":
            remove_at(parent_fd, victim)
        elif parent not in state.opaque:  # an opaque dir already hides everything below
            remove_at(parent_fd, victim)
            _overlay_whiteout(parent_fd, victim, namespace)
    finally:
        os.close(parent_fd)


def _overlay_whiteout(parent_fd: int, victim: str, namespace: XattrNamespace) -> None:
    try:
        os.mknod(victim, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent_fd)
    except PermissionError:
        # Kernels before 5.8 refuse unprivileged whiteout devices; 6.7+ also understand an
        # empty file with overlay.whiteout in a directory marked overlay.opaque=x.
        fd = os.open(victim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=parent_fd)
        try:
            os.setxattr(fd, f"{namespace}.overlay.whiteout", b"")
        finally:
            os.close(fd)
        try:
            os.getxattr(parent_fd, f"{namespace}.overlay.opaque")
        except OSError:
            os.setxattr(parent_fd, f"{namespace}.overlay.opaque", b"x")


def _opaque(
    name: str,
    parent: tuple[str, ...],
    root: SafeRoot,
    state: _State,
    mode: ExtractMode,
    namespace: XattrNamespace,
) -> None:
    fd = root.open_dir(parent, entry=name, create=True, follow=False)
    if fd is None:
        raise UnsafeLayerError(name, "opaque marker below a symlink")
    try:
        if mode == "overlay":
            os.setxattr(fd, f"{namespace}.overlay.opaque", b"y")
        # Apply mode: remove the lower content. Overlay mode: the dir holds nothing from lower
        # layers, only whiteouts (and dirs made for them), now redundant — and an xattr
        # whiteout file would show as an empty file inside an opaque=y directory.
        _clear_lower(fd, parent, state)
    finally:
        os.close(fd)
    state.opaque.add(parent)
    state.ancestors.add(parent)


def _clear_lower(dir_fd: int, parts: tuple[str, ...], state: _State) -> None:
    """Remove everything under ``parts`` that this layer did not write itself."""
    with os.scandir(dir_fd) as entries:
        children = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for child, is_dir in children:
        path = parts + (child,)
        if not state.owns(path):
            remove_at(dir_fd, child)
        elif is_dir:
            fd = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                _clear_lower(fd, path, state)
            finally:
                os.close(fd)


def _finish_dirs(root: SafeRoot, state: _State) -> None:
    """Set directory modes and mtimes last, deepest first, as writing inside changes them."""
    for entry in sorted(state.dirs, key=lambda d: len(d.parts), reverse=True):
        try:
            fd = root.open_dir(entry.parts, entry="/".join(entry.parts), create=False, follow=False)
        except UnsafeLayerError:
            fd = None
        if fd is None:
            continue  # replaced by a non-directory later in the layer
        try:
            os.chmod(fd, stat.S_IMODE(entry.mode))
            os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
        finally:
            os.close(fd)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


def _times(member: tarfile.TarInfo) -> tuple[int, int]:
    ns = _mtime_ns(member)
    return ns, ns


def _own(fd: int, member: tarfile.TarInfo, root: SafeRoot) -> None:
    if root.privileged:
        os.chown(fd, member.uid, member.gid)


def _chown_at(parent_fd: int, base: str, member: tarfile.TarInfo, root: SafeRoot) -> None:
    if root.privileged:
        os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)


def _set_xattrs(fd: int, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PAX):
            continue
        attr = key[len(_XATTR_PAX) :]
        if attr.startswith(("trusted.overlay.", "user.overlay.", "security.selinux")):
            continue  # overlay xattrs from a tar would steer the mount; selinux labels are host policy
        try:
            os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES, errno.EINVAL):
                raise
