"""What ADD does beyond COPY: http(s) downloads (``--checksum``) and local tar archives.

- A URL is downloaded (once per build) and copied like a file named after the URL's last path
  component, with mode 0600, as Docker does. Without ``--checksum`` its content digest is part of
  the cache key, so it is fetched on every build to know whether it changed; with
  ``--checksum=sha256:…`` the checksum *is* the key, so a cached step is not fetched at all, and a
  download that does not match fails the build.
- A local file that is a tar archive (plain, gzip, bzip2 or xz) is extracted into the
  destination, keeping the archive's modes and owners unless ``--chown`` is given. Entries that
  would leave the destination (``..``, absolute paths) are refused. Remote archives are not
  extracted (Docker's rule).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass

from nbdock.build.context import FileEntry, Selected
from nbdock.build.session import Session
from nbdock.errors import BuildError

_CHUNK = 1 << 20


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_git(source: str) -> bool:
    """A git repository source (BuildKit clones these; nbdock does not, yet)."""
    return source.startswith("git@") or source.split("#")[0].rstrip("/").endswith(".git")


def url_filename(url: str) -> str:
    from urllib.parse import urlparse  # here: most builds never download, and urllib is slow

    base = posixpath.basename(urlparse(url).path)
    return base if base not in ("", ".", "/") else "__unnamed__"


def _parse_checksum(checksum: str, line: int) -> str:
    algo, _, hex_digest = checksum.partition(":")
    if algo != "sha256" or len(hex_digest) != 64:
        raise BuildError(f"invalid checksum {checksum!r}", line=line,
                         hint="write --checksum=sha256:<64 hex digits>")
    return hex_digest.lower()


def fetch(session: Session, url: str, checksum: str | None, line: int) -> Selected:
    """The URL as a COPY source. With a checksum the download waits until the step runs."""
    name = url_filename(url)
    if checksum:
        expected = _parse_checksum(checksum, line)
        entry = FileEntry("", "", "f", 0o600, 0, 0, 0, digest=expected)
        return _Pending(name, (entry,), url=url, line=line)
    path, digest, size = download(session, url, None, line)
    return Selected(name, (FileEntry("", path, "f", 0o600, 0, 0, size, digest=digest),))


class _Pending(Selected):
    """A URL source whose content is known only by its checksum until the step executes."""

    def __init__(self, name: str, entries: tuple[FileEntry, ...], *, url: str, line: int) -> None:
        super().__init__(name, entries)
        self.url = url
        self.line = line

    def resolve(self, session: Session) -> Selected:
        entry = self.entries[0]
        path, digest, size = download(session, self.url, entry.digest, self.line)
        return Selected(self.name, (FileEntry("", path, "f", 0o600, 0, 0, size, digest=digest),))


def resolve_pending(session: Session, selected: Selected) -> Selected:
    return selected.resolve(session) if isinstance(selected, _Pending) else selected


def download(session: Session, url: str, expected: str | None, line: int) -> tuple[str, str, int]:
    """Fetch ``url`` into the build's temp area: (path, sha256 hex, size)."""
    import urllib.error
    import urllib.request

    folder = session.state_dir / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="add-", dir=folder)
    session.temp_paths.append(path)
    hasher = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - http(s) only, checked by is_url
            while chunk := response.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BuildError(f"ADD {url}: download failed: {reason}", line=line,
                         hint="check the URL and that this machine can reach it") from None
    digest = hasher.hexdigest()
    if expected is not None and digest != expected:
        raise BuildError(f"ADD {url}: checksum mismatch: expected sha256:{expected}, got "
                         f"sha256:{digest}", line=line,
                         hint="the file changed upstream, or the checksum is wrong")
    return path, digest, size


def is_local_archive(selected: Selected) -> bool:
    top = selected.entries[0]
    if top.kind != "f" or not top.path:
        return False
    try:
        return tarfile.is_tarfile(top.path)
    except OSError:
        return False


@dataclass(frozen=True)
class ArchiveEntry:
    name: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int = 0
    data: bytes | None = None
    link: str = ""


def _safe_name(raw: str) -> str | None:
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def archive_entries(path: str) -> list[ArchiveEntry]:
    """The entries of a (possibly compressed) tar archive, made safe to place under a directory."""
    out: list[ArchiveEntry] = []
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for info in tar:
                name = _safe_name(info.name)
                if name is None:
                    continue
                mode, uid, gid = info.mode & 0o7777, info.uid, info.gid
                if info.isdir():
                    out.append(ArchiveEntry(name, "d", mode, uid, gid))
                elif info.isreg():
                    handle = tar.extractfile(info)
                    data = handle.read() if handle is not None else b""
                    contents[name] = data
                    out.append(ArchiveEntry(name, "f", mode, uid, gid, len(data), data))
                elif info.issym():
                    out.append(ArchiveEntry(name, "l", 0o777, uid, gid, link=info.linkname))
                elif info.islnk():
                    target = _safe_name(info.linkname)
                    data = contents.get(target or "", b"")
                    out.append(ArchiveEntry(name, "f", mode, uid, gid, len(data), data))
                elif info.isfifo():
                    out.append(ArchiveEntry(name, "p", mode, uid, gid))
    except (tarfile.TarError, EOFError) as exc:
        raise BuildError(f"cannot extract {os.path.basename(path)}: {exc}") from None
    return out
