"""Turn an overlayfs upper directory into an OCI layer tar (the inverse of overlay extraction).

What a container changed lives in its upper dir, in overlayfs' own vocabulary: a deleted file is
a char device 0:0 (or, on 6.7+ kernels, an empty file with ``overlay.whiteout``), a directory
that replaced a lower one carries ``overlay.opaque=y``. OCI layers say the same with
``.wh.<name>`` and ``<dir>/.wh..wh..opq`` entries. The tar is reproducible: entries sorted
depth-first by name, numeric owners with empty user/group names, PAX format, whole-second
mtimes clamped to ``SOURCE_DATE_EPOCH`` when it is set (BuildKit's rule), overlay xattrs never
copied.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from nbdock.errors import ImageStoreError
from nbdock.image.tarheader import header

_XATTR_PAX = "SCHILY.xattr."
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
_KEEP_XATTRS = ("security.capability", "user.")
_CHUNK = 1 << 20
_SENDFILE_MIN = 1 << 16  # smaller files cost less through the buffer than a flush + sendfile


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else None


def diff_to_tar(upper_dir: Path, out: BinaryIO, *, epoch: int | None = None) -> None:
    """Write the changes recorded in ``upper_dir`` to ``out`` as an uncompressed OCI layer tar.

    ``epoch`` clamps mtimes (default: ``SOURCE_DATE_EPOCH`` from the environment, if set).
    """
    clamp = epoch if epoch is not None else source_date_epoch()
    sink = _TarSink(out)
    _Writer(clamp).walk(sink, upper_dir, "")
    sink.close()


class _TarSink:
    """The bytes ``tarfile.open(fileobj=out, mode="w|", format=PAX_FORMAT)`` would write, with
    headers built by ``tarheader`` and big files' data moved by ``sendfile`` when ``out`` has a
    file descriptor: a 200 MB layer never passes through Python (tarfile copies it in 16 KiB
    pieces, re-sliced per 10 KiB record)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.offset = 0
        try:
            self.fd: int | None = out.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            self.fd = None

    def add(self, info: tarfile.TarInfo, path: Path | None = None) -> None:
        head = header(info)
        self.out.write(head)
        self.offset += len(head)
        if path is None or info.size == 0:
            return
        with open(path, "rb") as source:
            self._copy(source, info.size, path)
        padding = -info.size % tarfile.BLOCKSIZE
        self.out.write(b"\0" * padding)
        self.offset += info.size + padding

    def _copy(self, source: BinaryIO, size: int, path: Path) -> None:
        sent = 0
        if self.fd is not None and size >= _SENDFILE_MIN:
            self.out.flush()
            try:
                while sent < size:
                    count = os.sendfile(self.fd, source.fileno(), sent, min(size - sent, 1 << 30))
                    if count == 0:
                        break
                    sent += count
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS) or sent:
                    raise
            else:
                if sent < size:
                    raise ImageStoreError(f"{path} shrank while its layer was written")
                return
        source.seek(sent)
        while sent < size:
            chunk = source.read(min(_CHUNK, size - sent))
            if not chunk:
                raise ImageStoreError(f"{path} shrank while its layer was written")
            self.out.write(chunk)
            sent += len(chunk)

    def close(self) -> None:
        """The end-of-archive blocks, padded to a whole record as tarfile pads them."""
        end = 2 * tarfile.BLOCKSIZE
        self.offset += end
        self.out.write(b"\0" * (end + -self.offset % tarfile.RECORDSIZE))
        self.out.flush()


class _Writer:
    def __init__(self, clamp: int | None) -> None:
        self.clamp = clamp
        self.inodes: dict[tuple[int, int], str] = {}

    def mtime(self, st: os.stat_result) -> int:
        seconds = int(st.st_mtime)
        return min(seconds, self.clamp) if self.clamp is not None else seconds

    def walk(self, tar: _TarSink, directory: Path, prefix: str) -> None:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: os.fsencode(e.name))
        for entry in entries:
            path = Path(entry.path)
            name = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            if _is_whiteout(path, st):
                tar.add(self._marker(prefix + ".wh." + entry.name, st))
                continue
            info = self._info(name, path, st)
            if info is None:
                continue  # sockets are not content (Docker skips them too)
            if info.isreg() and not info.islnk():
                tar.add(info, path)
            else:
                tar.add(info)
            if info.isdir():
                if overlay_xattr(path, "overlay.opaque") == b"y":
                    tar.add(self._marker(name + "/.wh..wh..opq", st))
                self.walk(tar, path, name + "/")

    def _marker(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = tarfile.REGTYPE
        info.mode = 0o644
        info.mtime = self.mtime(st)
        info.uname = info.gname = ""
        return info

    def _info(self, name: str, path: Path, st: os.stat_result) -> tarfile.TarInfo | None:
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = self.mtime(st)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(path)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.inodes:
                info.type = tarfile.LNKTYPE
                info.linkname = self.inodes[key]
            else:
                self.inodes.setdefault(key, name)
                info.type = tarfile.REGTYPE
                info.size = st.st_size
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            return None
        if not stat.S_ISLNK(mode):
            info.pax_headers = _pax_xattrs(path)
        return info


def _is_whiteout(path: Path, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    if not stat.S_ISREG(st.st_mode) or st.st_size != 0:
        return False
    return overlay_xattr(path, "overlay.whiteout") is not None


def overlay_xattr(path: str | Path, suffix: str) -> bytes | None:
    """An overlayfs xattr (``overlay.opaque``, ``overlay.whiteout``) in either namespace:
    ``trusted.`` as root, ``user.`` for layers made with the ``userxattr`` option."""
    for namespace in ("trusted.", "user."):
        try:
            return os.getxattr(path, namespace + suffix, follow_symlinks=False)
        except OSError:
            continue
    return None


def _pax_xattrs(path: Path) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    headers: dict[str, str] = {}
    for attr in sorted(names):
        if attr.startswith(_OVERLAY_XATTRS) or not attr.startswith(_KEEP_XATTRS):
            continue
        try:
            value = os.getxattr(path, attr, follow_symlinks=False)
        except OSError:
            continue
        headers[_XATTR_PAX + attr] = value.decode("utf-8", "surrogateescape")
    return headers
