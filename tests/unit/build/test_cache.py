"""Cache keys follow Docker's documented rule, and every miss is explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdock.build.cache import CacheIndex, StepInputs, base_key, chain_key, describe_file_changes

PARENT = base_key("sha256:" + "a" * 64, 0, "linux/amd64")


def run(text: str, **args: str) -> StepInputs:
    return StepInputs(original=text, text=text, args=args)


@pytest.fixture
def index(tmp_path: Path) -> CacheIndex:
    cache = CacheIndex(tmp_path / "cache.db")
    yield cache
    cache.close()


def test_same_inputs_same_key_and_any_input_changes_it() -> None:
    key = chain_key(PARENT, run("RUN make"))
    assert key == chain_key(PARENT, run("RUN make"))
    assert key.startswith("sha256:") and len(key) == 71
    others = {
        chain_key(PARENT, run("RUN make install")),
        chain_key(PARENT, run("RUN make", VERSION="2")),
        chain_key(base_key("sha256:" + "b" * 64, 0, "linux/amd64"), run("RUN make")),
        chain_key(PARENT, StepInputs("COPY a /a", "COPY a /a", files="d1")),
        chain_key(PARENT, StepInputs("COPY a /a", "COPY a /a", files="d2")),
    }
    assert key not in others and len(others) == 5


def test_the_epoch_and_platform_are_part_of_the_base_key() -> None:
    image = "sha256:" + "c" * 64
    assert base_key(image, 0, "linux/amd64") != base_key(image, 1700000000, "linux/amd64")
    assert base_key(image, 0, "linux/amd64") != base_key(image, 0, "linux/arm64")


def test_recorded_steps_are_found_with_their_layer(index: CacheIndex) -> None:
    inputs = run("RUN make")
    key = chain_key(PARENT, inputs)
    assert index.lookup(key) is None
    index.record(key, PARENT, inputs, "sha256:" + "d" * 64, 10240)
    hit = index.lookup(key)
    assert hit is not None and hit.layer == "sha256:" + "d" * 64 and hit.size == 10240
    index.record(chain_key(key, run("ENV A=1")), key, run("ENV A=1"), None, None)
    assert index.lookup(chain_key(key, run("ENV A=1"))).layer is None  # type: ignore[union-attr]


def test_miss_reasons(index: CacheIndex) -> None:
    old = StepInputs("RUN echo $V", "RUN echo $V", {"V": "1"})
    index.record(chain_key(PARENT, old), PARENT, old, None, None)
    explain = index.explain

    changed_arg = StepInputs("RUN echo $V", "RUN echo $V", {"V": "2"})
    miss = explain(PARENT, changed_arg, parent_rebuilt=False, stage_start=False)
    assert (miss.kind, miss.reason) == ("build-arg", "build arg V changed")

    other = StepInputs("RUN echo hello", "RUN echo hello")
    miss = explain(PARENT, other, parent_rebuilt=False, stage_start=False)
    assert miss.kind == "instruction" and "was: RUN echo $V" in miss.reason

    assert explain(PARENT, other, parent_rebuilt=True, stage_start=False).kind == "parent"
    fresh = base_key("sha256:" + "e" * 64, 0, "linux/amd64")
    assert explain(fresh, other, parent_rebuilt=False, stage_start=True).kind == "new"


def test_files_changed_names_the_files(index: CacheIndex) -> None:
    before = StepInputs("COPY . /app", "COPY . /app", files="d1",
                        manifest={"a.txt": "f644:0:0:aaaa", "b.txt": "f644:0:0:bbbb"})
    index.record(chain_key(PARENT, before), PARENT, before, "sha256:" + "1" * 64, 1)
    after = StepInputs("COPY . /app", "COPY . /app", files="d2",
                       manifest={"a.txt": "f644:0:0:aaaa", "b.txt": "f644:0:0:cccc",
                                 "new.txt": "f644:0:0:dddd"})
    miss = index.explain(PARENT, after, parent_rebuilt=False, stage_start=False)
    assert miss.kind == "files"
    assert miss.reason == "file changed: b.txt; file added: new.txt"


def test_a_changed_base_image_is_named(index: CacheIndex) -> None:
    old_base = base_key("sha256:" + "1" * 64, 0, "linux/amd64")
    new_base = base_key("sha256:" + "2" * 64, 0, "linux/amd64")
    index.note_base("docker.io/library/busybox:latest", "sha256:" + "1" * 64, old_base)
    step = run("RUN make")
    index.record(chain_key(old_base, step), old_base, step, None, None)
    index.note_base("docker.io/library/busybox:latest", "sha256:" + "2" * 64, new_base)
    miss = index.explain(new_base, step, parent_rebuilt=False, stage_start=True)
    assert miss.kind == "base"
    assert "busybox:latest changed" in miss.reason


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"a": "1"}, {"a": "2"}, "file changed: a"),
        ({"a": "1"}, {"a": "1", "b": "2"}, "file added: b"),
        ({"a": "1", "b": "2"}, {"a": "1"}, "file removed: b"),
        ({f"f{i}": "1" for i in range(5)}, {f"f{i}": "2" for i in range(5)},
         "files changed: f0, f1, f2 (+2 more)"),
        (None, {"a": "1"}, "files changed"),
        ({"a": "1"}, {"a": "1"}, "file metadata changed"),
    ],
)
def test_describe_file_changes(old: dict | None, new: dict, expected: str) -> None:
    assert describe_file_changes(old, new) == expected


def test_images_are_remembered_by_identity(index: CacheIndex) -> None:
    assert index.image_for("sha256:x") is None
    index.remember_image("sha256:x", "sha256:" + "f" * 64)
    assert index.image_for("sha256:x") == "sha256:" + "f" * 64
