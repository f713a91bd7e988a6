"""The image store end to end, on real files: import, lookups, inspect, tags, removal, layout."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from nbdock.errors import (
    Conflict,
    ImageNotFound,
    ImageStoreError,
    InvalidArgument,
    InvalidReference,
    UnsafeLayerError,
)
from nbdock.image import oci, validate
from nbdock.image.digest import sha256_digest
from nbdock.image.records import ImageRecord, LayerRecord
from nbdock.image.store import ImageStore
from tests.unit.image._schemas import validators
from tests.unit.image._tarutil import build_tar, tar_members


def rootfs_tar(files: dict[str, bytes], mtime: int = 1_700_000_000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(n).parent) for n in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


@pytest.fixture
def busybox_like(store: ImageStore) -> ImageRecord:
    data = rootfs_tar({"etc/hostname": b"box\n", "bin/hello": b"#!/bin/sh\necho hi\n"})
    return store.import_rootfs(io.BytesIO(data), "busybox", config={"Cmd": ["sh"], "Env": ["A=1"]})


def test_import_then_get_by_every_name(store: ImageStore, busybox_like: ImageRecord) -> None:
    image = busybox_like
    assert image.id.startswith("sha256:") and len(image.id) == 71
    assert image.repo_tags == ("busybox:latest",)
    hex_id = image.id.removeprefix("sha256:")
    for name in ["busybox", "busybox:latest", "docker.io/library/busybox:latest",
                 "index.docker.io/library/busybox", image.id, hex_id, hex_id[:4], hex_id[:12],
                 "sha256:" + hex_id[:6], f"busybox@{image.manifest_digest}"]:
        assert store.get(name).id == image.id, name
    for missing in ["nope", "busybox:2", hex_id[:3], "sha256:zzzz", "bb@" + image.manifest_digest]:
        with pytest.raises(ImageNotFound):
            store.get(missing)
    with pytest.raises(InvalidReference, match="try 'busybox'"):
        store.get("Busybox")
    assert [r.id for r in store.list()] == [image.id]


def test_record_and_inspect_shape(store: ImageStore, busybox_like: ImageRecord) -> None:
    image = busybox_like
    assert image.config["config"] == {"Cmd": ["sh"], "Env": ["A=1"]}
    assert image.config["rootfs"] == {"type": "layers", "diff_ids": [image.layers[0].diff_id]}
    assert image.created == image.config["created"] == "1970-01-01T00:00:00Z"
    (layer,) = image.layers
    assert isinstance(layer, LayerRecord) and layer.digest == layer.diff_id
    assert image.size == layer.size == store.blobs.path(layer.digest).stat().st_size
    info = store.inspect("busybox")
    assert set(info) >= {"Id", "RepoTags", "RepoDigests", "Created", "Architecture", "Os", "Size",
                         "Config", "RootFS", "History"}
    assert info["Id"] == image.id and info["RepoTags"] == ["busybox:latest"]
    assert info["RepoDigests"] == [f"busybox@{image.manifest_digest}"]
    assert info["Os"] == "linux" and info["Architecture"] == oci.host_platform()[0]
    assert info["RootFS"] == {"Type": "layers", "Layers": [layer.diff_id]}
    assert info["Config"] == {
        "Entrypoint": None, "Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "", "User": "",
        "Labels": None, "ExposedPorts": None, "Volumes": None, "StopSignal": "",
    }
    assert info["History"] == [{"created": "1970-01-01T00:00:00Z", "created_by": "nbdock import"}]
    json.dumps(info)  # plain JSON all the way down


def test_default_import_config_is_empty_and_comment_recorded(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar({"f": b"x"})), None, history_comment="from f")
    assert image.config["config"] == {}
    assert image.repo_tags == ()
    assert store.inspect(image.id)["Comment"] == "from f"


def test_import_is_reproducible_and_compression_blind(tmp_path: Path, monkeypatch) -> None:
    data = rootfs_tar({"a/b": b"content"})
    ids = {
        ImageStore(tmp_path / f"s{i}").import_rootfs(io.BytesIO(payload), "x").id
        for i, payload in enumerate([data, data, gzip.compress(data)])
    }
    assert len(ids) == 1  # gzip input is stored uncompressed: same diff_id, same id
    path = tmp_path / "rootfs.tar.gz"
    path.write_bytes(gzip.compress(data, mtime=5))
    assert ImageStore(tmp_path / "s3").import_rootfs(path, "x").id in ids
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    stamped = ImageStore(tmp_path / "s4").import_rootfs(io.BytesIO(data), "x")
    assert stamped.created == "2023-11-14T22:13:20Z" and stamped.id not in ids


def test_tag_and_remove_like_docker_rmi(store: ImageStore, busybox_like: ImageRecord) -> None:
    image = busybox_like
    assert store.tag("busybox", "bb:1").repo_tags == ("busybox:latest", "bb:1")
    store.tag(image.id[:14], "busybox:stable")
    with pytest.raises(InvalidReference):
        store.tag("busybox", f"bb@{image.manifest_digest}")
    assert store.remove("bb:1") == ["Untagged: bb:1"]
    assert store.get("busybox").repo_tags == ("busybox:latest", "busybox:stable")
    store.tag("busybox", "other/repo:v1")
    with pytest.raises(Conflict, match="must be forced"):
        store.remove(image.id)
    layer = image.layers[0]
    layer_dir = store.layer_dirs(image)[0]
    assert layer_dir.is_dir()
    lines = store.remove(image.id, force=True)
    assert lines == ["Untagged: busybox:latest", "Untagged: busybox:stable",
                     "Untagged: other/repo:v1", f"Deleted: {image.id}", f"Deleted: {layer.diff_id}"]
    assert store.list() == []
    assert not layer_dir.exists()
    assert list(store.blobs.dir.iterdir()) == []
    assert json.loads((store.root / "index.json").read_text())["manifests"] == []
    with pytest.raises(ImageNotFound):
        store.get("busybox")


def test_removing_last_tag_deletes_and_shared_layers_survive(store: ImageStore) -> None:
    data = rootfs_tar({"shared": b"same bytes"})
    a = store.import_rootfs(io.BytesIO(data), "a", config={"Cmd": ["a"]})
    b = store.import_rootfs(io.BytesIO(data), "b", config={"Cmd": ["b"]})
    assert a.id != b.id and a.layers == b.layers
    shared = store.layer_dirs(a)[0]
    assert store.remove("a") == ["Untagged: a:latest", f"Deleted: {a.id}"]
    assert store.layer_dirs(store.get("b")) == [shared] and shared.is_dir()
    assert store.remove("b")[-1] == f"Deleted: {b.layers[0].diff_id}"
    assert not shared.exists()


def test_retagging_leaves_a_dangling_image(store: ImageStore) -> None:
    old = store.import_rootfs(io.BytesIO(rootfs_tar({"v": b"1"})), "app")
    new = store.import_rootfs(io.BytesIO(rootfs_tar({"v": b"2"})), "app")
    assert store.get("app").id == new.id
    assert store.get(old.id).repo_tags == ()
    index = json.loads((store.root / "index.json").read_text())
    unnamed = [m for m in index["manifests"] if "annotations" not in m]
    assert [m["digest"] for m in unnamed] == [old.manifest_digest]
    assert store.remove(old.id) == [f"Deleted: {old.id}", f"Deleted: {old.layers[0].diff_id}"]


def test_the_store_is_a_valid_oci_layout(store: ImageStore, busybox_like: ImageRecord) -> None:
    store.tag("busybox", "localhost:5000/team/app:v2")
    store.create_image({"config": {"Cmd": ["true"]}}, [], None)
    schema = validators()
    root = store.root
    layout = json.loads((root / "oci-layout").read_text())
    assert layout == {"imageLayoutVersion": "1.0.0"} and not list(schema["layout"].iter_errors(layout))
    index = json.loads((root / "index.json").read_text())
    assert not list(schema["index"].iter_errors(index))
    validate.index(index)
    names = {m.get("annotations", {}).get(oci.ANNOTATION_REF_NAME) for m in index["manifests"]}
    assert names == {"docker.io/library/busybox:latest", "localhost:5000/team/app:v2", None}

    def blob(digest: str) -> bytes:
        data = (root / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
        assert sha256_digest(data) == digest
        return data

    for entry in index["manifests"]:
        manifest = json.loads(blob(entry["digest"]))
        assert len(blob(entry["digest"])) == entry["size"]
        assert not list(schema["manifest"].iter_errors(manifest))
        validate.image_manifest(manifest)
        config = json.loads(blob(manifest["config"]["digest"]))
        assert not list(schema["config"].iter_errors(config))
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            assert layer["mediaType"] == oci.MEDIA_TYPE_LAYER
            data = blob(layer["digest"])
            assert sha256_digest(data) == diff_id and len(data) == layer["size"]
            tar_members(data)  # must parse as a tar (the empty layer has no members)


def test_create_image_for_the_builder(store: ImageStore) -> None:
    base = store.add_layer_from_tar(io.BytesIO(rootfs_tar({"base": b"1"})))
    top = store.add_layer_from_tar(io.BytesIO(gzip.compress(rootfs_tar({"top": b"2"}))))
    assert store.add_layer_from_tar(io.BytesIO(rootfs_tar({"base": b"1"}))) == base
    config = {
        "config": {"Entrypoint": ["/top"], "WorkingDir": "/w", "Labels": {"k": "v"}},
        "history": [{"created_by": "FROM x"}, {"created_by": "ENV a=b", "empty_layer": True},
                    {"created_by": "COPY top /"}],
    }
    image = store.create_image(config, [base, top], "built:1")
    assert [layer.diff_id for layer in image.layers] == [base.diff_id, top.diff_id]
    assert image.config["config"]["WorkingDir"] == "/w"
    assert store.inspect("built:1")["Config"]["Labels"] == {"k": "v"}
    assert [p.name for p in store.layer_dirs(image)] == [
        base.diff_id.removeprefix("sha256:"), top.diff_id.removeprefix("sha256:")
    ]
    assert (store.layer_dirs(image)[1] / "top").read_bytes() == b"2"
    empty = store.create_image({"config": {"Cmd": ["true"]}}, [], "scratchy")
    assert empty.layers[0].diff_id == (
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    )
    with pytest.raises(InvalidArgument, match="history"):
        store.create_image({"history": [{"created_by": "one"}]}, [base, top], None)
    with pytest.raises(InvalidArgument, match="KEY=value"):
        store.create_image({"config": {"Env": ["NOEQUALS"]}}, [base], None)
    with pytest.raises(ImageStoreError, match="not in the store"):
        store.create_image({}, [LayerRecord("sha256:" + "e" * 64, "sha256:" + "e" * 64, 1)], None)


def test_not_a_tar_is_refused_without_leftovers(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument, match="not a tar"):
        store.import_rootfs(io.BytesIO(b"definitely not a tar archive\n" * 100), "bad")
    with pytest.raises(InvalidArgument):
        store.import_rootfs(io.BytesIO(b""), "bad")
    assert list(store.blobs.dir.iterdir()) == [] and list(store.temp.path.iterdir()) == []


def test_hostile_names_are_refused_at_import(store: ImageStore) -> None:
    for entries in ([{"name": "../escape", "type": "reg"}],
                    [{"name": "ok", "type": "reg"}, {"name": "l", "type": "hardlink",
                                                     "linkname": "../../etc/passwd"}]):
        with pytest.raises(UnsafeLayerError):
            store.import_rootfs(io.BytesIO(build_tar(entries)), "evil")
    assert store.list() == [] and list(store.blobs.dir.iterdir()) == []


def test_records_are_hashable_values(store: ImageStore, busybox_like: ImageRecord) -> None:
    again = store.get("busybox")
    assert again == busybox_like and len({again, busybox_like}) == 1


def test_layer_is_unpacked_once_and_shared_between_store_handles(
    store: ImageStore, busybox_like: ImageRecord
) -> None:
    (first,) = store.layer_dirs(busybox_like)
    inode = first.stat().st_ino
    (first / "marker-from-test").write_text("kept")  # proves the dir is not re-extracted
    other = ImageStore(store.root)
    (again,) = other.layer_dirs(other.get("busybox"))
    assert again == first and again.stat().st_ino == inode and (again / "marker-from-test").exists()
    assert (again / "bin" / "hello").read_text().startswith("#!/bin/sh")
    assert oct(again.stat().st_mode & 0o777) == oct(0o755)
    assert list(store.temp.path.iterdir()) == []


def test_corrupt_blobs_are_detected(store: ImageStore, busybox_like: ImageRecord) -> None:
    layer_blob = store.blobs.path(busybox_like.layers[0].digest)
    data = bytearray(layer_blob.read_bytes())
    data[600] ^= 0xFF  # inside the first file's content: still a well-formed tar
    layer_blob.write_bytes(bytes(data))
    with pytest.raises(ImageStoreError) as info:
        store.layer_dirs(busybox_like)
    assert type(info.value).__name__ == "DigestMismatch"
    assert list(store.layers_dir.iterdir()) == [] and list(store.temp.path.iterdir()) == []
    config_blob = store.blobs.path(busybox_like.id)
    config_blob.write_bytes(config_blob.read_bytes().replace(b'"sh"', b'"zsh"'))
    with pytest.raises(ImageStoreError, match="digest mismatch"):
        store.get("busybox")
    report = store.check(verify_blobs=True)
    assert sum("corrupt blob" in line for line in report) == 2
    assert not config_blob.exists() and not layer_blob.exists()


def test_blob_with_wrong_expected_digest_never_lands(store: ImageStore) -> None:
    with pytest.raises(ImageStoreError, match="digest mismatch"):
        store.blobs.write_stream(io.BytesIO(b"payload"), expected="sha256:" + "0" * 64)
    with pytest.raises(ImageStoreError, match="digest mismatch"):
        store.blobs.write_bytes(b"payload", expected="sha256:" + "0" * 64)
    assert list(store.blobs.dir.iterdir()) == [] and list(store.temp.path.iterdir()) == []
    digest, size = store.blobs.write_stream(io.BytesIO(b"payload"), expected=sha256_digest(b"payload"))
    assert (digest, size) == (sha256_digest(b"payload"), 7)
    with pytest.raises(ImageStoreError):
        store.blobs.path("sha256:../../etc/passwd")


def test_check_removes_unknown_layer_dirs(store: ImageStore, busybox_like: ImageRecord) -> None:
    stray = store.layers_dir / ("f" * 64)
    stray.mkdir()
    (stray / "half").write_text("x")
    known = store.layer_dirs(busybox_like)[0]
    assert store.check() == [f"removed unreferenced layer dir {'f' * 64}"]
    assert not stray.exists() and known.is_dir()
    assert os.listdir(store.temp.path) == []


def test_records_never_share_their_config_and_show_current_tags(
    store: ImageStore, busybox_like: ImageRecord
) -> None:
    """The store keeps the documents it verified (a second ``get`` does not re-read the blobs):
    still, every record has its own config, and tags are always the index's current ones."""
    first = store.get("busybox")
    first.config["config"]["Env"].append("LEAK=1")
    second = store.get("busybox")
    assert second.config["config"]["Env"] == ["A=1"]
    assert second == busybox_like and second.config is not first.config
    store.tag("busybox", "other:1")
    assert store.get("busybox").repo_tags == ("busybox:latest", "other:1")
    other = ImageStore(store.root)  # another process's view: verifies for itself
    assert other.get("other:1").layers == busybox_like.layers
