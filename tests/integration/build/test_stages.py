"""Multi-stage builds, --target, COPY --from, reproducible ids, RUN mounts, teacher-grade errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdock.errors import BuildError, DockerfileError
from tests.integration.build.conftest import build, run, statuses, write_context

MULTI = """\
FROM busybox AS base
RUN echo base > /base.txt

FROM base AS builder
RUN mkdir /out && echo built > /out/artifact.txt

FROM busybox AS broken
RUN echo this stage is never needed; exit 1

FROM busybox
COPY --from=builder /out/artifact.txt /app/
COPY --from=0 /base.txt /app/
COPY --from=busybox /etc/passwd /app/passwd
"""


def test_multi_stage_builds_only_what_the_target_needs(client, ctx: Path) -> None:
    image, events = build(client, write_context(ctx, MULTI))
    assert run(client, image.id, "cat", "/app/artifact.txt", "/app/base.txt") == "built\nbase\n"
    assert "root:x:0:0" in run(client, image.id, "cat", "/app/passwd")
    assert not any("never needed" in text for text in statuses(events))  # stage "broken" skipped
    target, events = build(client, ctx, target="builder")
    assert run(client, target.id, "cat", "/base.txt", "/out/artifact.txt") == "base\nbuilt\n"
    started = [e.to_json() for e in events if e.to_json()["type"] == "build-started"][0]
    assert started["stages"] == ["base", "builder"]


def test_unknown_stage_and_target(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox AS one\nFROM busybox\nCOPY --from=onee /x /x\n")
    with pytest.raises(BuildError) as info:
        build(client, ctx)
    assert info.value.line == 3 and "one" in str(info.value)
    write_context(ctx, "FROM busybox AS builder\nRUN true\n")
    with pytest.raises(DockerfileError, match="did you mean"):
        build(client, ctx, target="buidler")


def test_the_same_build_gives_the_same_id_in_another_store(client, ctx: Path, tmp_path: Path) -> None:
    import nbdock

    write_context(ctx, "FROM busybox\nRUN echo reproducible > /r.txt && mkdir -p /d/e\n"
                       "COPY a.txt /a.txt\nENV X=1\nWORKDIR /work\n", {"a.txt": "a\n"})
    first, _ = build(client, ctx)
    other = nbdock.from_env(tmp_path / "other-root")
    other.images.bootstrap("busybox")
    second, _ = other.images.build(path=str(ctx))
    assert second.id == first.id
    assert second.attrs["Created"] == "1970-01-01T00:00:00Z"


def test_source_date_epoch_sets_times(client, ctx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    write_context(ctx, "FROM busybox\nRUN echo epoch > /e.txt\n")
    image, _ = build(client, ctx)
    assert image.attrs["Created"] == "2023-11-14T22:13:20Z"
    assert run(client, image.id, "stat", "-c", "%Y", "/e.txt") == "1700000000\n"


def test_run_mounts(client, ctx: Path, tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("s3cret\n")
    write_context(ctx, """\
FROM busybox
RUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > /seen.txt
RUN --mount=type=bind,source=conf,target=/conf cat /conf/app.cfg > /copied.cfg
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && test ! -e /scratch-left
RUN --mount=type=secret,id=token cat /run/secrets/token > /proof.txt; test -s /proof.txt
RUN --mount=type=secret,id=token,env=TOKEN test "${#TOKEN}" = 6
RUN --network=none sh -c 'ls /sys/class/net' > /net.txt
""", {"conf/app.cfg": "cfg\n"})
    image, _ = build(client, ctx, secrets={"token": str(secret)})
    assert run(client, image.id, "cat", "/copied.cfg") == "cfg\n"
    assert run(client, image.id, "cat", "/proof.txt") == "s3cret\n"
    assert run(client, image.id, "cat", "/net.txt").split() == ["lo"]
    leftovers = run(client, image.id, "sh", "-c", "ls -d /cache /conf /scratch /run/secrets "
                                                  "2>/dev/null; true")
    assert leftovers == ""  # mount points are not part of the layers
    first = run(client, image.id, "cat", "/seen.txt")
    image2, _ = build(client, ctx, secrets={"token": str(secret)}, nocache=True)
    assert int(run(client, image2.id, "cat", "/seen.txt")) == int(first) + 1  # the cache persists
    assert "s3cret" not in str(image2.attrs["History"])


def test_a_required_secret_must_be_given(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN --mount=type=secret,id=npm,required=true true\n")
    with pytest.raises(BuildError, match="--secret id=npm"):
        build(client, ctx)


def test_errors_name_the_line_and_the_fix(client, ctx: Path) -> None:
    cases = [
        ("FROM busybox\nRUNN echo hi\n", DockerfileError, 'did you mean "RUN"'),
        ("FROM UBUNTU\n", DockerfileError, "lowercase"),
        ("FROM busybox\nCOPY onlyone\n", DockerfileError, "COPY"),
        ("FROM nbtest/does-not-exist\n", BuildError, "nbdock bootstrap"),
        ("FROM busybox\nRUN echo partial; false\n", BuildError, "exit code 1"),
        ("FROM --platform=linux/s390x busybox\n", BuildError, "host's platform"),
        ("FROM busybox\nADD https://example.invalid/x/y.git /src\n", BuildError, "git sources"),
        ("FROM busybox\nRUN --security=insecure true\n", BuildError, "insecure"),
    ]
    for text, kind, fragment in cases:
        write_context(ctx, text)
        with pytest.raises(kind) as info:
            build(client, ctx)
        assert fragment in str(info.value), text
        assert info.value.line is not None, text


def test_bind_mount_from_a_stage_and_copy_flags(client, ctx: Path) -> None:
    write_context(ctx, """\
FROM busybox AS tools
RUN mkdir -p /opt/tools && echo tool-v1 > /opt/tools/version

FROM busybox
RUN --mount=type=bind,from=tools,source=/opt/tools,target=/mnt cat /mnt/version > /seen.txt
COPY --parents src/./a/one.txt /kept/
COPY --exclude=*.log logs/ /logs/
""", {"src/a/one.txt": "1\n", "logs/keep.txt": "k\n", "logs/drop.log": "d\n"})
    image, _ = build(client, ctx)
    assert run(client, image.id, "cat", "/seen.txt") == "tool-v1\n"
    assert run(client, image.id, "cat", "/kept/a/one.txt") == "1\n"
    assert run(client, image.id, "ls", "/logs") == "keep.txt\n"


def test_client_history_matches_the_dockerfile(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nENV STEP=1\nRUN echo layer > /l.txt\n")
    image, _ = build(client, ctx, tag="nbtest/history")
    rows = image.history()
    assert rows[0]["Id"] == image.id and rows[0]["Tags"] == ["nbtest/history:latest"]
    assert rows[0]["CreatedBy"] == "RUN /bin/sh -c echo layer > /l.txt" and rows[0]["Size"] > 0
    assert rows[1]["CreatedBy"] == "ENV STEP=1" and rows[1]["Size"] == 0
    assert rows[2]["Id"] == "<missing>"
