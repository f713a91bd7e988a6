"""The store across processes: a writer killed mid-import, and several writers at once."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from nbdock.image import validate
from nbdock.image.store import ImageStore
from tests.conftest import REPO
from tests.unit.image.test_store import rootfs_tar

_IMPORT_FROM_STDIN = """
import sys
from pathlib import Path
from nbdock.image.store import ImageStore
store = ImageStore(Path(sys.argv[1]))
image = store.import_rootfs(sys.stdin.buffer if sys.argv[2] == "-" else Path(sys.argv[2]), sys.argv[3])
store.layer_dirs(image)
print(image.id)
"""


def _python(*args: str, stdin: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", _IMPORT_FROM_STDIN, *args],
        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=False,
    )


def _wait_for(predicate, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_writer_killed_mid_import_leaves_nothing_after_reopen(tmp_path: Path) -> None:
    root = tmp_path / "image"
    ImageStore(root)  # create the layout first, so the child's tmp/ is ours to watch
    child = _python(str(root), "-", "crashy", stdin=subprocess.PIPE)
    assert child.stdin is not None
    header = tarfile.TarInfo("big")
    header.size = 64 << 20
    child.stdin.write(header.tobuf(format=tarfile.PAX_FORMAT) + b"\0" * (1 << 20))
    child.stdin.flush()
    _wait_for(lambda: any(p.stat().st_size > 0 for p in (root / "tmp").iterdir()), "a temp blob")
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdin.close()
    leftovers = list((root / "tmp").iterdir())
    assert leftovers and all(p.name.startswith(f"{child.pid}.") for p in leftovers)

    store = ImageStore(root)  # reopening sweeps the dead writer's files
    assert list((root / "tmp").iterdir()) == []
    assert store.list() == [] and list(store.blobs.dir.iterdir()) == []


def test_leftovers_of_a_dead_process_are_swept_but_live_ones_kept(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "image")
    dead = subprocess.Popen(["true"])
    dead.wait()
    half_layer = store.temp.path / f"{dead.pid}.abc123.layer"
    (half_layer / "usr" / "bin").mkdir(parents=True)
    (half_layer / "usr" / "bin" / "partial").write_bytes(b"\0" * 10)
    os.chmod(half_layer / "usr", 0o555)
    half_blob = store.temp.path / f"{dead.pid}.def456.blob"
    half_blob.write_bytes(b"half a blob")
    mine = store.temp.name("blob")
    mine.write_bytes(b"this process is alive and still writing")
    ImageStore(store.root)
    assert sorted(p.name for p in store.temp.path.iterdir()) == [mine.name]
    mine.unlink()


def test_concurrent_writers_keep_the_store_consistent(tmp_path: Path) -> None:
    root = tmp_path / "image"
    ImageStore(root)
    children = []
    for i in range(3):
        tar = tmp_path / f"rootfs{i}.tar"
        tar.write_bytes(rootfs_tar({f"file{i}": os.urandom(256 << 10), "shared": b"same"}))
        children.append(_python(str(root), str(tar), f"app{i}"))
    store = ImageStore(root)
    mine = store.import_rootfs(io.BytesIO(rootfs_tar({"mine": b"1"})), "mine")
    store.tag("mine", "mine:v2")
    ids = set()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        ids.add(out.decode().strip())
    images = store.list()
    assert {image.id for image in images} == ids | {mine.id}
    tags = sorted(tag for image in images for tag in image.repo_tags)
    assert tags == ["app0:latest", "app1:latest", "app2:latest", "mine:latest", "mine:v2"]
    index = json.loads((root / "index.json").read_text())
    validate.index(index)
    assert len(index["manifests"]) == 5
    for image in images:
        (layer_dir,) = store.layer_dirs(image)
        assert layer_dir.is_dir()
    assert list((root / "tmp").iterdir()) == []
