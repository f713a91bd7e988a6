"""Base images without a registry: busybox from the host's busybox-static, Debian via mmdebstrap.

``bootstrap_busybox`` writes its rootfs tar itself, entry by entry in sorted order with fixed
owners and mtimes (``SOURCE_DATE_EPOCH`` or 0), so the same busybox binary always yields the same
bytes — and, through the store's reproducible import, the same image id. ``bootstrap_debian``
runs ``mmdebstrap --variant=minbase`` (about 30 s, needs deb.debian.org).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from nbdock.errors import ImageStoreError, InvalidArgument, MissingHostTool
from nbdock.image.records import ImageRecord
from nbdock.image.store import ImageStore

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
_PT_INTERP = 3
_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnobody:x:65534:\n"
# Directories of the rootfs besides the applets' own; mode per directory.
_DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
    "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
    "usr/sbin": 0o755, "var": 0o755,
}


def find_static_busybox() -> Path:
    """The host's statically linked busybox, or MissingHostTool naming ``busybox-static``."""
    which = shutil.which("busybox")
    candidates = [*_BUSYBOX_CANDIDATES, *([Path(which)] if which else [])]
    found = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
    for candidate in found:
        if is_static_elf(candidate):
            return candidate
    purpose = "(statically linked) to bootstrap the busybox image"
    raise MissingHostTool("busybox", "busybox-static", purpose)


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (nothing to load from the host)."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF":
            return False
        wide, endian = ident[4] == 2, "<" if ident[5] == 1 else ">"
        header = f.read(48 if wide else 36)
        fmt = f"{endian}HHIQQQIHHH" if wide else f"{endian}HHIIIIIHHH"
        fields = struct.unpack(fmt, header[: struct.calcsize(fmt)])
        phoff, phentsize, phnum = fields[4], fields[8], fields[9]
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (p_type,) = struct.unpack(f"{endian}I", f.read(4))
            if p_type == _PT_INTERP:
                return False
    return True


def _applets(busybox: Path) -> list[str]:
    listing = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout
    skip = {"bin/busybox", "linuxrc"}  # the binary itself; linuxrc is an initrd init
    return sorted({line.strip() for line in listing.splitlines() if line.strip()} - skip)


def _epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else 0


def write_busybox_rootfs(busybox: Path, out: BinaryIO) -> None:
    """A minimal rootfs tar around ``busybox``: applet symlinks, passwd/group, standard dirs."""
    mtime = _epoch()
    applets = _applets(busybox)
    dirs = dict(_DIRS)
    for applet in applets:
        parent = applet.rpartition("/")[0]
        while parent:
            dirs.setdefault(parent, 0o755)
            parent = parent.rpartition("/")[0]
    files = {
        "bin/busybox": (busybox.read_bytes(), 0o755),
        "etc/passwd": (_PASSWD.encode(), 0o644),
        "etc/group": (_GROUP.encode(), 0o644),
    }
    names = sorted({*dirs, *files, *applets}, key=lambda n: n.split("/"))

    def info(name: str) -> tarfile.TarInfo:
        entry = tarfile.TarInfo(name)
        entry.mtime, entry.uid, entry.gid, entry.uname, entry.gname = mtime, 0, 0, "", ""
        return entry

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            entry = info(name)
            if name in dirs:
                entry.type, entry.mode = tarfile.DIRTYPE, dirs[name]
                tar.addfile(entry)
            elif name in files:
                data, entry.mode = files[name]
                entry.size = len(data)
                tar.addfile(entry, io.BytesIO(data))
            else:
                entry.type, entry.mode, entry.linkname = tarfile.SYMTYPE, 0o777, "/bin/busybox"
                tar.addfile(entry)


def _busybox_version(busybox: Path) -> str:
    result = subprocess.run([str(busybox)], capture_output=True, text=True, check=False)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].strip() if first else "BusyBox"


def bootstrap_busybox(store: ImageStore) -> ImageRecord:
    """Import ``busybox:latest`` built from the host's busybox-static; same binary, same id."""
    busybox = find_static_busybox()
    with tempfile.SpooledTemporaryFile(max_size=16 << 20) as tar:
        write_busybox_rootfs(busybox, tar)  # type: ignore[arg-type]
        tar.seek(0)
        return store.import_rootfs(
            tar,  # type: ignore[arg-type]
            "busybox:latest",
            config={"Cmd": ["sh"], "Env": [DEFAULT_PATH]},
            history_comment=f"bootstrapped from {_busybox_version(busybox)}",
        )


def host_codename() -> str:
    """``VERSION_CODENAME`` from ``/etc/os-release`` (e.g. ``bookworm``)."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip().strip('"'):
            return value.strip().strip('"')
    raise InvalidArgument(
        "cannot tell the host's Debian codename", hint="pass a suite, e.g. 'bookworm'"
    )


def bootstrap_debian(store: ImageStore, suite: str | None = None) -> ImageRecord:
    """``debian:<suite>`` from ``mmdebstrap --variant=minbase`` (suite: the host's codename).

    The host's own codename is also tagged ``debian:latest``. Cmd is ``["bash"]`` as in the
    official image.
    """
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise MissingHostTool("mmdebstrap", "mmdebstrap", "to bootstrap a Debian image")
    codename = suite or host_codename()
    if not codename.replace("-", "").isalnum():
        raise InvalidArgument(f"invalid Debian suite {codename!r}", hint="e.g. 'bookworm'")
    work = store.temp.make_dir("mmdebstrap")  # swept on the next open if this process dies
    try:
        tar_path = work / f"{codename}.tar"
        result = subprocess.run(
            [mmdebstrap, "--variant=minbase", "--mode=auto", codename, str(tar_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise ImageStoreError(f"mmdebstrap {codename} failed ({result.returncode}):\n{tail}")
        image = store.import_rootfs(
            tar_path,
            f"debian:{codename}",
            config={"Cmd": ["bash"], "Env": [DEFAULT_PATH]},
            history_comment=f"mmdebstrap --variant=minbase {codename}",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if codename == _host_codename_or_none():
        image = store.tag(image.id, "debian:latest")
    return image


def _host_codename_or_none() -> str | None:
    try:
        return host_codename()
    except InvalidArgument:
        return None
