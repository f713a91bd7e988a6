"""The store's write path for the builder: finished tar files adopted by rename, trusted tars,
layer lookups without an image, one-transaction tags, the shared SQLite connection."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from nbdock.errors import ImageStoreError, InvalidArgument, InvalidReference, UnsafeLayerError
from nbdock.image.difftar import diff_to_tar
from nbdock.image.digest import sha256_digest
from nbdock.image.store import ImageStore
from tests.conftest import need
from tests.unit.image.test_store import rootfs_tar


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


def _temp_tar(store: ImageStore, data: bytes) -> Path:
    path = store.temp_path("layer")
    path.write_bytes(data)
    return path


def _evil_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("trusted", [False, True])
def test_file_is_renamed_into_blobs_under_its_digest(store: ImageStore, trusted: bool) -> None:
    data = rootfs_tar({"etc/motd": b"hello\n"})
    path = _temp_tar(store, data)
    inode = path.stat().st_ino
    layer = store.add_layer_from_file(path, trusted=trusted)
    assert layer.digest == layer.diff_id == sha256_digest(data) and layer.size == len(data)
    blob = store.blobs.path(layer.digest)
    assert blob.read_bytes() == data
    assert blob.stat().st_ino == inode  # moved, not copied
    assert oct(blob.stat().st_mode & 0o777) == oct(0o644)
    assert not path.exists() and list(store.temp.path.iterdir()) == []
    assert store.has_layer(layer.diff_id)
    # The same content again (from a stream this time) is the same layer.
    assert store.add_layer_from_tar(io.BytesIO(data)) == layer
    again = _temp_tar(store, data)
    assert store.add_layer_from_file(again, trusted=True) == layer and not again.exists()


def test_untrusted_files_are_checked_and_consumed(store: ImageStore) -> None:
    not_tar = _temp_tar(store, b"this is not a tar archive" * 100)
    with pytest.raises(InvalidArgument):
        store.add_layer_from_file(not_tar)
    evil = _temp_tar(store, _evil_tar())
    with pytest.raises(UnsafeLayerError):
        store.add_layer_from_file(evil)
    assert not not_tar.exists() and not evil.exists()
    assert store.blobs.all_digests() == [] and store.db.layers() == []
    with pytest.raises(UnsafeLayerError):
        store.add_layer_from_tar(io.BytesIO(_evil_tar()))
    assert store.blobs.all_digests() == []


def test_trusted_streams_skip_the_header_pass_but_still_store(store: ImageStore) -> None:
    layer = store.add_layer_from_tar(io.BytesIO(_evil_tar()), trusted=True)
    assert store.has_layer(layer.diff_id)
    # Extraction still refuses what the skipped check would have refused.
    with pytest.raises(UnsafeLayerError):
        store.unpacked_dirs([layer])


def test_symlinks_and_missing_files_are_refused(store: ImageStore, tmp_path: Path) -> None:
    target = tmp_path / "real.tar"
    target.write_bytes(rootfs_tar({"a": b"1"}))
    link = store.temp_path("layer")
    link.symlink_to(target)
    with pytest.raises(ImageStoreError):
        store.add_layer_from_file(link, trusted=True)
    with pytest.raises(ImageStoreError):
        store.add_layer_from_file(store.temp_path("layer"), trusted=True)
    assert target.exists() and store.blobs.all_digests() == []


def test_a_file_on_another_file_system_is_copied_in(store: ImageStore) -> None:
    shm = Path("/dev/shm")
    need(shm.is_dir() and os.stat(shm).st_dev != os.stat(store.root).st_dev,
         "a second file system (/dev/shm) beside the store's")
    path = shm / f"nbdock-test-{os.getpid()}.tar"
    data = rootfs_tar({"x": b"y"})
    path.write_bytes(data)
    try:
        layer = store.add_layer_from_file(path, trusted=True)
    finally:
        leftover = path.exists()
        path.unlink(missing_ok=True)
    assert store.blobs.path(layer.digest).read_bytes() == data and not leftover
    assert list(store.temp.path.iterdir()) == []


def test_has_layer_needs_index_and_blob(store: ImageStore) -> None:
    layer = store.add_layer_from_tar(io.BytesIO(rootfs_tar({"f": b"1"})))
    assert store.has_layer(layer.diff_id)
    assert not store.has_layer(sha256_digest(b"never stored"))
    store.blobs.delete(layer.digest)
    assert not store.has_layer(layer.diff_id)


def test_unpacked_dirs_for_layers_that_are_no_image(store: ImageStore) -> None:
    bottom = store.add_layer_from_tar(io.BytesIO(rootfs_tar({"etc/a": b"bottom"})))
    top = store.add_layer_from_tar(io.BytesIO(rootfs_tar({"etc/b": b"top"})))
    dirs = store.unpacked_dirs([bottom, top])
    assert [d.name for d in dirs] == [bottom.diff_id[7:], top.diff_id[7:]]
    assert (dirs[0] / "etc/a").read_bytes() == b"bottom"
    assert (dirs[1] / "etc/b").read_bytes() == b"top"
    assert store.unpacked_dirs([top]) == dirs[1:] and store.unpacked_dirs([]) == []


def test_create_image_sets_every_tag_in_one_go(store: ImageStore) -> None:
    layer = store.add_layer_from_tar(io.BytesIO(rootfs_tar({"f": b"1"})))
    image = store.create_image({}, [layer], "app:1", extra_tags=["app:latest", "other"])
    assert image.repo_tags == ("app:1", "app:latest", "other:latest")
    assert ImageStore(store.root).get("other").id == image.id  # a fresh reader sees it all
    index = (store.root / "index.json").read_text()
    assert "docker.io/library/app:latest" in index and "docker.io/library/other:latest" in index
    with pytest.raises(InvalidReference):
        store.create_image({}, [layer], "app:2", extra_tags=["app@sha256:" + "0" * 64])
    assert "app:2" not in store.get(image.id).repo_tags
    retagged = store.tag("app:1", "x", "y:2")
    assert retagged.repo_tags == ("app:1", "app:latest", "other:latest", "x:latest", "y:2")


def test_one_store_from_many_threads(store: ImageStore) -> None:
    layer = store.add_layer_from_tar(io.BytesIO(rootfs_tar({"f": b"1"})))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                image = store.create_image({"config": {"Env": [f"N={n}.{i}"]}}, [layer],
                                           f"t{n}:{i}")
                assert store.get(f"t{n}:{i}").id == image.id
                assert store.has_layer(layer.diff_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list()) == 40


def test_a_forked_child_uses_its_own_connection(store: ImageStore) -> None:
    layer = store.add_layer_from_tar(io.BytesIO(rootfs_tar({"f": b"1"})))
    store.create_image({}, [layer], "parent")
    pid = os.fork()
    if pid == 0:  # the child: write through the inherited store object, then leave at once
        code = 1
        try:
            store.create_image({"config": {"Env": ["CHILD=1"]}}, [layer], "child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("child").config["config"]["Env"] == ["CHILD=1"]
    assert store.get("parent").repo_tags == ("parent:latest",)


def test_diff_tar_to_a_file_matches_the_stream(tmp_path: Path) -> None:
    """The sendfile path (a real file) writes the bytes the buffered path writes."""
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    (upper / "d" / "big").write_bytes(os.urandom(3 << 20) + b"tail")
    (upper / "d" / "small").write_bytes(b"x" * 700)
    (upper / "empty").write_bytes(b"")
    os.link(upper / "d" / "big", upper / "hard")
    os.symlink("d/big", upper / "link")
    long_name = "n" * 120 + "\u00e9"  # needs PAX records: tarfile writes that header
    (upper / long_name).write_bytes(b"pax")
    try:
        os.setxattr(upper / "d" / "small", "user.note", b"kept")
        has_xattr = True
    except OSError:  # a file system without user xattrs
        has_xattr = False
    streamed = io.BytesIO()
    diff_to_tar(upper, streamed, epoch=7)
    target = tmp_path / "layer.tar"
    with open(target, "wb") as out:
        diff_to_tar(upper, out, epoch=7)
    assert target.read_bytes() == streamed.getvalue()
    assert len(streamed.getvalue()) % tarfile.RECORDSIZE == 0
    with tarfile.open(target) as tar:
        member = tar.extractfile("d/big")
        assert member is not None and member.read() == (upper / "d" / "big").read_bytes()
        assert tar.getmember("hard").islnk() and tar.getmember("link").issym()
        long_member = tar.extractfile(long_name)
        assert long_member is not None and long_member.read() == b"pax"
        if has_xattr:
            headers = tar.getmember("d/small").pax_headers
            assert headers["SCHILY.xattr.user.note"] == "kept"
