"""The store used by an unprivileged user: overlay extraction with user.* xattrs, no devices."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, need

_SCRIPT = r"""
import io, json, os, stat, tarfile
from pathlib import Path
from nbdock.image.store import ImageStore
from nbdock.image.bootstrap import bootstrap_busybox

store = ImageStore(Path(os.environ["STORE"]))
base = bootstrap_busybox(store)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    for name, kind, mode in [("ro", "dir", 0o555), ("ro/f", "reg", 0o444), ("opq", "dir", 0o755),
                             ("opq/.wh..wh..opq", "reg", 0o644), (".wh.gone", "reg", 0o644),
                             ("null", "chr", 0o666)]:
        info = tarfile.TarInfo(name)
        info.mode = mode
        info.type = {"dir": tarfile.DIRTYPE, "reg": tarfile.REGTYPE, "chr": tarfile.CHRTYPE}[kind]
        info.devmajor, info.devminor = 1, 3
        tar.addfile(info, io.BytesIO(b"") if kind == "reg" else None)
layer = store.add_layer_from_tar(io.BytesIO(buf.getvalue()))
image = store.create_image({}, [base.layers[0], layer], "rootless:test")
bottom, top = store.layer_dirs(image)
gone = os.lstat(top / "gone")
report = {
    "sh": os.readlink(bottom / "bin" / "sh"),
    "top": sorted(os.listdir(top)),
    "opaque": os.getxattr(top / "opq", "user.overlay.opaque").decode(),
    "whiteout": [stat.S_ISCHR(gone.st_mode), os.major(gone.st_rdev), os.minor(gone.st_rdev)],
    "ro_mode": oct(os.stat(top / "ro").st_mode & 0o777),
    "removed": store.remove("rootless:test") + store.remove("busybox"),
    "left": os.listdir(Path(os.environ["STORE"]) / "layers") + os.listdir(Path(os.environ["STORE"]) / "tmp"),
}
print(json.dumps(report))
"""


def _system_python() -> str | None:
    """A Python >= 3.11 that an unprivileged user can execute (the venv's may live under /root)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            ok = subprocess.run([candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"])
            if ok.returncode == 0:
                return candidate
    return None


@pytest.mark.root
@pytest.mark.rootless
def test_store_works_for_an_unprivileged_user() -> None:
    need(os.geteuid() == 0, "root (to switch to the nobody user)")
    python = _system_python()
    need(python is not None and shutil.which("setpriv") is not None, "/usr/bin/python3 >= 3.11, setpriv")
    assert python is not None
    work = Path(tempfile.mkdtemp(prefix="nbdock-rootless-", dir="/tmp"))
    try:
        os.chmod(work, 0o755)
        shutil.copytree(REPO / "nbdock", work / "src" / "nbdock",
                        ignore=shutil.ignore_patterns("__pycache__"))
        store = work / "store"
        store.mkdir()
        os.chown(store, 65534, 65534)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(work / "src"),
               "STORE": str(store), "HOME": str(store), "PYTHONDONTWRITEBYTECODE": "1"}
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", _SCRIPT],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert report["sh"] == "/bin/busybox"
    assert report["top"] == ["gone", "opq", "ro"]  # no device node without CAP_MKNOD
    assert report["opaque"] == "y"
    assert report["whiteout"] == [True, 0, 0]
    assert report["ro_mode"] == oct(0o555)
    assert report["removed"][0] == "Untagged: rootless:test"
    assert report["left"] == []
