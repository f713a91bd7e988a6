"""The build context: source selection as BuildKit does it, hashing without mtimes, the stat
cache, and .dockerignore."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nbdock.build import statcache
from nbdock.build.context import BuildContext, SourceNotFound, clean_source, files_digest
from nbdock.build.statcache import StatCache
from nbdock.dockerfile import DockerIgnore


def make(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def old(root: Path) -> None:
    """Age every file past the racy window, so the stat cache may trust it."""
    past = time.time() - 3600
    for path in [root, *root.rglob("*")]:
        os.utime(path, (past, past), follow_symlinks=False)


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuildContext:
    monkeypatch.setattr(statcache, "RACY_NS", 0)
    root = tmp_path / "ctx"
    make(root, {"app.py": "print(1)\n", "src/a.txt": "a", "src/sub/b.txt": "b",
                "notes.md": "n", ".env": "secret"})
    return BuildContext(root, DockerIgnore(()), StatCache(tmp_path / "stat"))


def digest(ctx: BuildContext, *sources: str) -> str:
    return files_digest((str(i), s) for i, src in enumerate(sources) for s in ctx.select(src))[0]


@pytest.mark.parametrize(("raw", "clean"), [("/app", "app"), ("./app/", "app"), ("app/../x", "x"),
                                            ("../../etc/passwd", "etc/passwd"), (".", "")])
def test_sources_are_cleaned_inside_the_context(raw: str, clean: str) -> None:
    assert clean_source(raw) == clean


def test_a_file_and_a_directory(ctx: BuildContext) -> None:
    [app] = ctx.select("app.py")
    assert app.name == "app.py" and not app.is_dir and app.entries[0].digest
    [src] = ctx.select("src/")
    assert src.is_dir
    assert [e.rel for e in src.entries] == ["", "a.txt", "sub", "sub/b.txt"]


def test_wildcards_match_one_component_and_dotfiles(ctx: BuildContext) -> None:
    assert [s.name for s in ctx.select("*.py")] == ["app.py"]
    assert [s.name for s in ctx.select("src/*/b.txt")] == ["src/sub/b.txt"]
    assert [s.name for s in ctx.select(".e*")] == [".env"]
    assert ctx.select("*.none") == []  # BuildKit: an empty wildcard copies nothing


def test_a_missing_plain_source_is_an_error(ctx: BuildContext) -> None:
    with pytest.raises(SourceNotFound) as info:
        ctx.select("nope.txt")
    assert not info.value.ignored


def test_symlinked_source_is_followed_inside_the_context(ctx: BuildContext) -> None:
    os.symlink("src", ctx.root / "link")
    os.symlink("/etc", ctx.root / "escape")
    [linked] = ctx.select("link")
    assert linked.is_dir and [e.rel for e in linked.entries][1] == "a.txt"
    with pytest.raises(SourceNotFound):
        ctx.select("escape/passwd")  # /etc resolves to <context>/etc, which does not exist


def test_digest_ignores_mtime_but_not_content_mode_or_name(ctx: BuildContext) -> None:
    before = digest(ctx, ".")
    os.utime(ctx.root / "app.py", (1, 1))
    assert digest(ctx, ".") == before
    (ctx.root / "app.py").write_text("print(2)\n")
    changed = digest(ctx, ".")
    assert changed != before
    os.chmod(ctx.root / "app.py", 0o755)
    assert digest(ctx, ".") != changed
    os.rename(ctx.root / "notes.md", ctx.root / "notes.txt")
    assert digest(ctx, "app.py") == digest(ctx, "app.py")
    assert digest(ctx, ".") != changed


def test_stat_cache_spares_reading_an_unchanged_context(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "RACY_NS", 0)  # ctime cannot be aged: trust it at once
    root = tmp_path / "ctx"
    make(root, {f"d/f{i}.txt": str(i) for i in range(20)})
    old(root)
    first = BuildContext(root, DockerIgnore(()), StatCache(tmp_path / "stat"))
    digest(first, ".")
    assert first.statcache.hashed_files == 20
    first.statcache.save()
    second = BuildContext(root, DockerIgnore(()), StatCache(tmp_path / "stat"))
    assert digest(second, ".") == digest(first, ".")
    assert second.statcache.hashed_files == 0
    (root / "d" / "f3.txt").write_text("changed")
    third = BuildContext(root, DockerIgnore(()), StatCache(tmp_path / "stat"))
    digest(third, ".")
    assert third.statcache.hashed_files == 1


def test_a_racily_clean_file_is_hashed_again(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    make(root, {"fresh.txt": "just written"})
    first = BuildContext(root, DockerIgnore(()), StatCache(tmp_path / "stat"))
    digest(first, ".")
    first.statcache.save()
    second = BuildContext(root, DockerIgnore(()), StatCache(tmp_path / "stat"))
    digest(second, ".")
    assert second.statcache.hashed_files == 1  # changed less than RACY_NS ago: not trusted


def test_dockerignore_excludes_and_exceptions_reinclude(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    make(root, {"keep.txt": "k", "logs/a.log": "a", "logs/important.log": "i",
                "build/out.o": "o", "build/keep/me.txt": "m"})
    ignore = DockerIgnore.from_text("logs/*.log\n!logs/important.log\nbuild\n!build/keep\n")
    ctx = BuildContext(root, ignore, StatCache(None))
    names = [e.rel for e in ctx.select(".")[0].entries]
    assert "keep.txt" in names and "logs/important.log" in names
    assert "logs/a.log" not in names and "build/out.o" not in names
    assert "build/keep/me.txt" in names
    with pytest.raises(SourceNotFound) as info:
        ctx.select("logs/a.log")
    assert info.value.ignored


def test_an_ignored_file_does_not_change_the_digest(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    make(root, {"app.py": "x", "cache.tmp": "1"})
    ctx = BuildContext(root, DockerIgnore.from_text("*.tmp\n"), StatCache(None))
    before = digest(ctx, ".")
    (root / "cache.tmp").write_text("2")
    assert digest(ctx, ".") == before


def test_manifest_names_entries(ctx: BuildContext) -> None:
    _, manifest = files_digest(("0", s) for s in ctx.select("src"))
    assert set(manifest()) == {"src", "src/a.txt", "src/sub", "src/sub/b.txt"}


def test_cached_walk_gives_the_full_walks_digest(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from nbdock.build.treehash import digest_entries

    monkeypatch.setattr(statcache, "RACY_NS", 0)
    root = tmp_path / "ctx"
    make(root, {"top.txt": "t", "a/one.txt": "1", "a/b/two.txt": "2", "a/b/c/three.txt": "3",
                "skip.log": "x", "a/skip.log": "y"})
    os.symlink("one.txt", root / "a" / "link")

    def both() -> tuple[str, str, int]:
        ctx = BuildContext(root, DockerIgnore.from_text("*.log\n"), StatCache(tmp_path / "s"))
        fast = ctx.tree_digest("")
        slow = digest_entries(ctx.collect(""))
        ctx.statcache.save()
        return fast, slow, ctx.statcache.hashed_files

    fast, slow, _ = both()
    assert fast == slow
    again, _, hashed = both()
    assert again == fast and hashed == 0
    (root / "a" / "b" / "two.txt").write_text("changed")
    changed, slow, hashed = both()
    assert changed == slow != fast
    os.chmod(root / "a" / "b" / "c", 0o700)
    assert both()[0] == both()[1] != changed  # a directory's own mode counts too
    (root / "a" / "skip.log").write_text("ignored files never count")
    assert both()[0] == both()[1]
