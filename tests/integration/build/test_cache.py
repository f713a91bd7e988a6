"""Docker's documented cache rules, each one observed on real builds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nbdock.errors import BuildError
from tests.integration.build.conftest import build, run, statuses, write_context

DOCKERFILE = """\
FROM busybox
ARG VERSION=1
RUN echo base > /base.txt
COPY app.txt /app/app.txt
RUN echo "v$VERSION" > /version.txt
COPY data/ /data/
"""


@pytest.fixture
def project(ctx: Path) -> Path:
    return write_context(ctx, DOCKERFILE, {"app.txt": "app v1\n", "data/a.txt": "a\n",
                                           "data/b.txt": "b\n", "notes.tmp": "scratch\n",
                                           ".dockerignore": "*.tmp\n"})


def test_rebuild_is_fully_cached_and_gives_the_same_image(client, project: Path) -> None:
    first, _ = build(client, project, buildargs={"VERSION": "cache1"})
    second, events = build(client, project, buildargs={"VERSION": "cache1"})
    assert second.id == first.id
    steps = statuses(events)
    assert all(status == "cached" for text, status in steps.items() if not text.startswith("FROM"))


def test_mtime_only_change_stays_cached(client, project: Path) -> None:
    build(client, project, buildargs={"VERSION": "mtime"})
    future = time.time() + 100
    os.utime(project / "app.txt", (future, future))
    os.utime(project / "data" / "a.txt", (1, 1))
    _, events = build(client, project, buildargs={"VERSION": "mtime"})
    assert statuses(events)["COPY app.txt /app/app.txt"] == "cached"
    assert statuses(events)["COPY data/ /data/"] == "cached"


def test_changed_file_rebuilds_from_its_copy_and_names_it(client, project: Path) -> None:
    build(client, project, buildargs={"VERSION": "files"})
    (project / "app.txt").write_text("app v2\n")
    image, events = build(client, project, buildargs={"VERSION": "files"})
    steps = statuses(events)
    assert steps["RUN echo base > /base.txt"] == "cached"
    assert steps["COPY app.txt /app/app.txt"] == "miss:files:file changed: app.txt"
    assert steps['RUN echo "v$VERSION" > /version.txt'].startswith("miss:parent:")
    assert steps["COPY data/ /data/"].startswith("miss:parent:")
    assert run(client, image.id, "cat", "/app/app.txt") == "app v2\n"


def test_mode_change_is_a_change(client, project: Path) -> None:
    build(client, project, buildargs={"VERSION": "mode"})
    os.chmod(project / "data" / "b.txt", 0o600)
    _, events = build(client, project, buildargs={"VERSION": "mode"})
    assert statuses(events)["COPY data/ /data/"] == "miss:files:file changed: data/b.txt"


def test_ignored_file_change_stays_cached(client, project: Path) -> None:
    build(client, project, buildargs={"VERSION": "ignored"})
    (project / "notes.tmp").write_text("something else entirely\n")
    _, events = build(client, project, buildargs={"VERSION": "ignored"})
    assert all(s in ("cached", "done") for s in statuses(events).values())


def test_changed_build_arg_misses_at_first_use_not_at_definition(client, project: Path) -> None:
    build(client, project, buildargs={"VERSION": "a1"})
    image, events = build(client, project, buildargs={"VERSION": "a2"})
    steps = statuses(events)
    assert steps["ARG VERSION=1"] == "cached"
    # Docker: every RUN after the ARG uses it (as an environment variable), so the first RUN
    # after its declaration is where the change shows.
    assert steps["RUN echo base > /base.txt"] == "miss:build-arg:build arg VERSION changed"
    assert run(client, image.id, "cat", "/version.txt") == "va2\n"


def test_an_arg_used_only_by_copy_misses_at_the_copy(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN echo first\nARG WHERE=/a\nENV X=1\n"
                       "COPY f.txt $WHERE/f.txt\n", {"f.txt": "f"})
    build(client, ctx, buildargs={"WHERE": "/one"})
    _, events = build(client, ctx, buildargs={"WHERE": "/two"})
    steps = statuses(events)
    assert steps["ENV X=1"] == "cached"  # ENV does not read WHERE
    assert steps["COPY f.txt $WHERE/f.txt"] == "miss:build-arg:build arg WHERE changed"


def test_no_cache_rebuilds_everything(client, project: Path) -> None:
    build(client, project, buildargs={"VERSION": "nc"})
    _, events = build(client, project, buildargs={"VERSION": "nc"}, nocache=True)
    steps = statuses(events)
    assert steps["RUN echo base > /base.txt"] == "miss:no-cache:--no-cache was given"


def test_changed_instruction_says_what_it_was(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN echo one\nRUN echo after\n")
    build(client, ctx)
    write_context(ctx, "FROM busybox\nRUN echo two\nRUN echo after\n")
    _, events = build(client, ctx)
    steps = statuses(events)
    assert steps["RUN echo two"].startswith("miss:instruction:instruction changed (was:")
    assert "echo one" in steps["RUN echo two"]
    assert steps["RUN echo after"] == "miss:parent:an earlier step was rebuilt"


def test_a_failed_step_leaves_the_earlier_steps_cached(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN echo prepared > /prep.txt\n"
                       "RUN echo compiling; echo 'error: missing semicolon' >&2; exit 3\n"
                       "RUN echo done\n")
    with pytest.raises(BuildError) as info:
        build(client, ctx)
    error = info.value
    assert error.exit_code == 3 and error.line == 3
    assert "error: missing semicolon" in str(error)
    assert "error: missing semicolon" in error.build_log
    write_context(ctx, "FROM busybox\nRUN echo prepared > /prep.txt\nRUN echo fixed\nRUN echo done\n")
    _, events = build(client, ctx)
    steps = statuses(events)
    assert steps["RUN echo prepared > /prep.txt"] == "cached"
    assert steps["RUN echo fixed"].startswith("miss:instruction")
    assert steps["RUN echo done"].startswith("miss:parent")


def test_a_deleted_cached_layer_is_rebuilt(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN echo unique-layer-for-rmi > /u.txt\n")
    image, _ = build(client, ctx, tag="nbtest/rmi")
    client.images.remove("nbtest/rmi")
    image2, events = build(client, ctx)
    assert statuses(events)["RUN echo unique-layer-for-rmi > /u.txt"].startswith("miss:layer-gone")
    assert image2.id == image.id  # reproducible: the same layer again
