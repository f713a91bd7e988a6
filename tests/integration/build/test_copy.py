"""COPY and ADD follow Docker's file/directory rules; layers come straight from the context."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbdock.errors import BuildError, DockerfileError
from tests.integration.build.conftest import build, run, write_context

FILES = {"a.txt": "A\n", "b.txt": "B\n", "src/one.py": "1\n", "src/pkg/two.py": "2\n",
         "script.sh": "#!/bin/sh\necho script\n"}


def listing(client, image_id: str, *paths: str) -> str:
    return run(client, image_id, "sh", "-c", "cd / && find " + " ".join(paths) + " | sort")


def test_file_and_directory_rules(client, ctx: Path) -> None:
    write_context(ctx, """\
FROM busybox
WORKDIR /w
COPY a.txt renamed.txt
COPY a.txt b.txt into/
COPY src /code
COPY src/ /code2/
COPY a.txt /tmp
COPY *.txt ./stars/
COPY . /all/
""", FILES)
    image, _ = build(client, ctx)
    assert run(client, image.id, "cat", "/w/renamed.txt") == "A\n"
    assert listing(client, image.id, "w/into").split() == ["w/into", "w/into/a.txt", "w/into/b.txt"]
    # A directory's contents are copied, not the directory itself.
    assert listing(client, image.id, "code").split() == [
        "code", "code/one.py", "code/pkg", "code/pkg/two.py"]
    assert listing(client, image.id, "code2").split() == listing(client, image.id, "code") \
        .replace("code", "code2").split()
    # /tmp exists as a directory: the file goes inside, and /tmp keeps its 1777 mode.
    assert run(client, image.id, "stat", "-c", "%a", "/tmp") == "1777\n"
    assert run(client, image.id, "cat", "/tmp/a.txt") == "A\n"
    assert sorted(run(client, image.id, "ls", "/w/stars").split()) == ["a.txt", "b.txt"]
    assert "Dockerfile" in run(client, image.id, "ls", "/all")


def test_owner_and_mode(client, ctx: Path) -> None:
    (ctx / "script.sh").parent.mkdir(exist_ok=True)
    write_context(ctx, """\
FROM busybox
RUN echo app:x:1500:1600::/home/app:/bin/sh >> /etc/passwd && echo app:x:1600: >> /etc/group
COPY script.sh /plain/
COPY --chown=app script.sh /owned/
COPY --chown=7:8 --chmod=750 script.sh /both/run.sh
COPY --chown=app:app src/ /tree/
""", FILES)
    (ctx / "script.sh").chmod(0o755)
    image, _ = build(client, ctx)
    stat = "stat -c '%u:%g %a %n'"
    out = run(client, image.id, "sh", "-c", f"{stat} /plain/script.sh /owned/script.sh "
                                            f"/both/run.sh /tree /tree/pkg/two.py").splitlines()
    assert out == ["0:0 755 /plain/script.sh", "1500:1600 755 /owned/script.sh",
                   "7:8 750 /both/run.sh", "1500:1600 755 /tree", "1500:1600 644 /tree/pkg/two.py"]
    assert run(client, image.id, "/both/run.sh") == "script\n"


def test_copy_into_a_symlinked_directory_follows_it(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN mkdir -p /real && ln -s /real /link\nCOPY a.txt /link/\n",
                  FILES)
    image, _ = build(client, ctx)
    assert run(client, image.id, "cat", "/real/a.txt") == "A\n"
    assert run(client, image.id, "readlink", "/link") == "/real\n"


def test_heredoc_files(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nARG WHO=world\nCOPY <<EOF /greet.txt\nhello $WHO\nEOF\n"
                       "COPY <<one.txt <<'two.txt' /docs/\n1 $WHO\none.txt\n2 $WHO\ntwo.txt\n"
                       "RUN <<EOF\necho from heredoc > /run.txt\necho line two >> /run.txt\nEOF\n"
                       "RUN <<EOF\n#!/bin/sh\necho shebang > /shebang.txt\nEOF\n")
    image, _ = build(client, ctx)
    assert run(client, image.id, "cat", "/greet.txt") == "hello world\n"
    assert run(client, image.id, "cat", "/docs/one.txt", "/docs/two.txt") == "1 world\n2 $WHO\n"
    assert run(client, image.id, "cat", "/run.txt") == "from heredoc\nline two\n"
    assert run(client, image.id, "cat", "/shebang.txt") == "shebang\n"


def test_add_extracts_local_archives(client, ctx: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("pkg/readme.txt", b"inside\n"), ("pkg/bin/tool", b"#!/bin/sh\necho tool\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if "bin" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
    write_context(ctx, "FROM busybox\nADD bundle.tar.gz /opt/\nCOPY bundle.tar.gz /kept/\n",
                  {"bundle.tar.gz": buffer.getvalue()})
    image, _ = build(client, ctx)
    assert run(client, image.id, "cat", "/opt/pkg/readme.txt") == "inside\n"
    assert run(client, image.id, "/opt/pkg/bin/tool") == "tool\n"
    assert run(client, image.id, "ls", "/kept") == "bundle.tar.gz\n"  # COPY never extracts


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "file.txt").write_text("downloaded\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_add_url_with_checksum(client, ctx: Path, web: str) -> None:
    import hashlib

    digest = hashlib.sha256(b"downloaded\n").hexdigest()
    write_context(ctx, f"FROM busybox\nADD --checksum=sha256:{digest} {web}/file.txt /dl/\n"
                       f"ADD {web}/file.txt /plain.txt\n")
    image, _ = build(client, ctx)
    assert run(client, image.id, "cat", "/dl/file.txt") == "downloaded\n"
    assert run(client, image.id, "stat", "-c", "%a", "/plain.txt") == "600\n"
    write_context(ctx, f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {web}/file.txt /dl/\n")
    with pytest.raises(BuildError, match="checksum mismatch"):
        build(client, ctx)


def test_copy_errors_teach(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nCOPY apps.txt /x/\n", {"app.txt": "x", ".dockerignore": "*.log\n",
                                                            "debug.log": "x"})
    with pytest.raises(BuildError) as info:
        build(client, ctx)
    assert info.value.line == 2 and "did you mean 'app.txt'" in str(info.value)
    write_context(ctx, "FROM busybox\nCOPY debug.log /x/\n")
    with pytest.raises(BuildError, match="excluded by .dockerignore"):
        build(client, ctx)
    write_context(ctx, "FROM busybox\nCOPY app.txt other.txt /x\n", {"other.txt": "o"})
    with pytest.raises(DockerfileError, match="must be a directory and end with a /"):
        build(client, ctx)
    write_context(ctx, "FROM busybox\nCOPY http://example.invalid/x /x\n")
    with pytest.raises(DockerfileError, match="use ADD"):
        build(client, ctx)


def test_copy_layer_holds_only_the_copied_files(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nCOPY a.txt /etc/a.txt\n", FILES)
    image, _ = build(client, ctx)
    top = image.attrs["RootFS"]["Layers"][-1]
    blob = client.engine.images.blobs.path(top)
    with tarfile.open(blob) as tar:
        members = [(m.name, oct(m.mode), m.uid, m.mtime) for m in tar.getmembers()]
    assert members == [("etc", "0o755", 0, 0), ("etc/a.txt", "0o644", 0, 0)]
