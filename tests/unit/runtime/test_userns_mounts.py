"""Read-only remounts in a user namespace keep the mount's locked flags (or the kernel says EPERM).

The setup needs no root: a first user namespace mounts a nosuid,nodev tmpfs, a second (nested)
one inherits it with those flags locked, exactly as a rootless container inherits the host's
mounts. The test then binds a directory of it and makes the bind read-only both ways.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nbdock.runtime.linux import libc, mounts, userns
from tests.conftest import need


def _probe(base: Path) -> dict:
    report: dict = {}
    userns.unshare_mapped(userns.self_mapping(os.getuid(), os.getgid()), libc.CLONE_NEWNS)
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
    libc.mount("tmpfs", str(base), "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "size=1m")
    for name in ("source", "plain", "kept"):
        os.mkdir(base / name)
    # Now a less privileged namespace: the tmpfs comes along with nosuid,nodev locked.
    userns.unshare_mapped(userns.self_mapping(os.getuid(), os.getgid()), libc.CLONE_NEWNS)
    for name in ("plain", "kept"):
        libc.mount(str(base / "source"), str(base / name), None, libc.MS_BIND | libc.MS_REC)
    try:
        libc.mount(None, str(base / "plain"), None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY)
        report["plain"] = "ok"
    except OSError as error:
        report["plain"] = error.errno
    mounts.remount_readonly(str(base / "kept"))
    flags = os.statvfs(base / "kept").f_flag
    report["kept"] = [bool(flags & f) for f in (os.ST_RDONLY, os.ST_NOSUID, os.ST_NODEV)]
    try:
        (base / "kept" / "new").write_text("x")
        report["write"] = "ok"
    except OSError as error:
        report["write"] = error.errno
    return report


def test_remount_readonly_keeps_locked_flags(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            result = _probe(tmp_path)
        except BaseException as error:  # noqa: BLE001 - the child must never unwind into pytest
            result = {"error": f"{type(error).__name__}: {error}"}
        os.write(write_fd, json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    report = json.loads(os.read(read_fd, 65536))
    os.close(read_fd)
    os.waitpid(pid, 0)
    need("error" not in report or "unshare" not in report["error"], "user namespaces")
    assert report == {"plain": 1, "kept": [True, True, True], "write": 30}  # EPERM; EROFS
