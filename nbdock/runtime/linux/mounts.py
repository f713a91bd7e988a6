"""The container's filesystem: overlay root, /proc, /sys, a minimal /dev, user mounts, masking.

Everything here runs in the container's init, inside its fresh mount namespace, so no mount is
ever visible on the host and all of them vanish with the namespace when PID 1 exits: a killed
engine cannot leak a mount. Paths given by the user are joined under the rootfs without following
symlinks out of it (``resolve_in_root``), because a hostile image may plant ``/etc -> /host/etc``.

In a user namespace (rootless) three things differ: the overlay stores its metadata in
``user.*`` xattrs (``userxattr``), device nodes are bound from the host since mknod is refused,
and the flags of a mount inherited from the host (nosuid, nodev, noexec) are *locked*: a
read-only remount that does not repeat them fails with EPERM, so every remount here reads the
mount's current flags and keeps them (harmless as root, where nothing is locked).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

from nbdock.runtime.linux import libc
from nbdock.runtime.spec import MASKED_PATHS, READONLY_PATHS, Mount

# The legacy mount(2) data is one page; long lower-dir lists need the new mount API.
_LEGACY_OPTIONS_LIMIT = 4000

DEVICES: tuple[tuple[str, int, int], ...] = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)


# statvfs f_flag bits (ST_NOSUID, ST_NODEV, ST_NOEXEC) share their values with the MS_ flags.
_LOCKABLE = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def remount_readonly(target: str, extra: int = 0) -> None:
    """Make the bind mount at ``target`` read-only, keeping its nosuid/nodev/noexec flags.

    The atime flags need no care: a remount without any atime flag keeps the mount's own.
    """
    kept = os.statvfs(target).f_flag & _LOCKABLE
    libc.mount(
        None, target, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | kept | extra
    )


def make_rootfs_private() -> None:
    """Stop our mounts propagating to the host (and the host's into us) before mounting anything."""
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)


def mount_overlay(
    target: str, layers: Sequence[str], upper: str, work: str, userxattr: bool = False
) -> None:
    """Mount ``layers`` (bottom first) read-only under a writable ``upper`` at ``target``."""
    lowers = list(reversed(layers))  # overlayfs lists the top-most lower dir first
    if not lowers:
        raise OSError(errno.EINVAL, "an overlay root needs at least one layer")
    extra = ",userxattr" if userxattr else ""
    options = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}{extra}"
    if len(options) < _LEGACY_OPTIONS_LIMIT:
        libc.mount("overlay", target, "overlay", 0, options)
        return
    fd = libc.fsopen("overlay")
    try:
        for lower in lowers:
            libc.fsconfig_string(fd, "lowerdir+", lower)
        libc.fsconfig_string(fd, "upperdir", upper)
        libc.fsconfig_string(fd, "workdir", work)
        if userxattr:
            libc.fsconfig_flag(fd, "userxattr")
        libc.fsconfig_create(fd)
        mount_fd = libc.fsmount(fd)
        try:
            libc.move_mount_to(mount_fd, target)
        finally:
            os.close(mount_fd)
    finally:
        os.close(fd)


def resolve_in_root(root: str, path: str) -> str:
    """Join ``path`` under ``root`` resolving symlinks as if ``root`` were ``/`` (like securejoin)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(info.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, "too many symlinks", path)
            link = os.readlink(candidate)
            if link.startswith("/"):
                resolved = []
            parts = [p for p in link.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _ensure_target(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    if is_dir:
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def mount_proc_sys(rootfs: str, new_netns: bool) -> None:
    proc = resolve_in_root(rootfs, "/proc")
    _ensure_target(proc, True)
    libc.mount("proc", proc, "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    sys_dir = resolve_in_root(rootfs, "/sys")
    _ensure_target(sys_dir, True)
    flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC | libc.MS_RDONLY
    if new_netns:
        libc.mount("sysfs", sys_dir, "sysfs", flags)
    else:
        # A sysfs instance belongs to a network namespace; with the host's, bind the host's.
        libc.mount("/sys", sys_dir, None, libc.MS_BIND | libc.MS_REC)
        remount_readonly(sys_dir, flags & ~libc.MS_RDONLY)


def mount_dev(rootfs: str, can_mknod: bool) -> None:
    """A tmpfs /dev with only the safe devices: never the host's /dev."""
    dev = resolve_in_root(rootfs, "/dev")
    _ensure_target(dev, True)
    libc.mount("tmpfs", dev, "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME, "mode=755,size=65536k")
    old_umask = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            node = os.path.join(dev, name)
            if can_mknod:
                os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            else:  # in a user namespace mknod is refused: bind the host's node instead
                _ensure_target(node, False)
                libc.mount(f"/dev/{name}", node, None, libc.MS_BIND)
        os.mkdir(os.path.join(dev, "pts"), 0o755)
        libc.mount(
            "devpts", os.path.join(dev, "pts"), "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620" + (",gid=5" if can_mknod else ""),
        )
        os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
        os.mkdir(os.path.join(dev, "shm"), 0o1777)
        libc.mount(
            "shm", os.path.join(dev, "shm"), "tmpfs",
            libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC, "mode=1777,size=65536k",
        )
        os.mkdir(os.path.join(dev, "mqueue"), 0o755)
        libc.mount(
            "mqueue", os.path.join(dev, "mqueue"), "mqueue",
            libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
        )
    finally:
        os.umask(old_umask)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ):
        os.symlink(target, os.path.join(dev, name))


def mount_user_volumes(rootfs: str, mounts: Sequence[Mount]) -> None:
    """``-v`` binds and ``--tmpfs`` mounts, in order, so a later mount may nest in an earlier one."""
    for spec in mounts:
        target = resolve_in_root(rootfs, spec.target)
        if spec.type == "tmpfs":
            _ensure_target(target, True)
            data = ",".join(spec.options) or "mode=1777"
            flags = libc.MS_NOSUID | libc.MS_NODEV | (libc.MS_RDONLY if spec.readonly else 0)
            libc.mount("tmpfs", target, "tmpfs", flags, data)
            continue
        _ensure_target(target, os.path.isdir(spec.source))
        libc.mount(spec.source, target, None, libc.MS_BIND | libc.MS_REC)
        if spec.readonly:
            remount_readonly(target)


def bind_file(source: str, rootfs: str, target: str) -> None:
    """Bind a file the runtime generated (hostname, hosts, resolv.conf) if the image has /etc."""
    path = resolve_in_root(rootfs, target)
    if not os.path.isdir(os.path.dirname(path)):
        return
    _ensure_target(path, False)
    libc.mount(source, path, None, libc.MS_BIND)


def pivot_into(rootfs: str) -> None:
    """Make ``rootfs`` the root and detach the old one: no path leads back to the host after this.

    ``pivot_root(".", ".")`` stacks the old root on top of the new one, so one lazy unmount of
    "." removes it without needing a put_old directory inside the image.
    """
    os.chdir(rootfs)
    libc.pivot_root(".", ".")
    libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")


def mask_paths() -> None:
    """Docker's masked (hidden) and read-only /proc and /sys paths; run after pivot_root."""
    for path in MASKED_PATHS:
        try:
            if os.path.isdir(path):
                libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY)
            elif os.path.exists(path):
                libc.mount("/dev/null", path, None, libc.MS_BIND)
        except FileNotFoundError:
            continue
    for path in READONLY_PATHS:
        if not os.path.exists(path):
            continue
        libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC)
        remount_readonly(path, _LOCKABLE)


def make_root_readonly() -> None:
    remount_readonly("/")
