"""Resolve Docker's ``USER name[:group]`` against the container's own /etc/passwd and /etc/group.

Runs after pivot_root, so the files read are the image's, never the host's. Numeric ids need no
entry (Docker allows ``-u 1234``); a name that is missing is an error, as in Docker.
"""

from __future__ import annotations

from nbdock.runtime._plain import Frozen


class UnknownUser(LookupError):
    """A user or group name the image does not define."""


class ExecUser(Frozen):
    __slots__ = ("uid", "gid", "groups", "home")
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    def __init__(self, uid: int, gid: int, groups: tuple[int, ...], home: str) -> None:
        self._set(uid=uid, gid=gid, groups=groups, home=home)


def _read_table(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n").split(":") for line in handle if line.strip()]
    except OSError:
        return []


def resolve(user_spec: str, root: str = "/") -> ExecUser:
    """Turn ``""``, ``"name"``, ``"uid"``, ``"name:group"``, ``"uid:gid"`` into ids.

    ``root`` is "/" in the container (after pivot_root); tests pass a directory.
    """
    user_part, _, group_part = (user_spec or "0").partition(":")
    passwd = _read_table(root.rstrip("/") + "/etc/passwd")
    uid: int | None = None
    gid = 0
    home = "/"
    for fields in passwd:
        if len(fields) < 7:
            continue
        if fields[0] == user_part or (user_part.isdigit() and fields[2] == user_part):
            uid, gid, home = int(fields[2]), int(fields[3]), fields[5] or "/"
            break
    if uid is None:
        if not user_part.isdigit():
            raise UnknownUser(f"unable to find user {user_part}: no matching entries in passwd file")
        uid = int(user_part)
        home = "/" if uid else "/root"
    groups_table = _read_table(root.rstrip("/") + "/etc/group")
    if group_part:
        found = None
        for fields in groups_table:
            if len(fields) >= 3 and (fields[0] == group_part or fields[2] == group_part):
                found = int(fields[2])
                break
        if found is None:
            if not group_part.isdigit():
                raise UnknownUser(f"unable to find group {group_part}: no matching entries in group file")
            found = int(group_part)
        gid = found
    name = next((f[0] for f in passwd if len(f) >= 3 and f[2] == str(uid)), user_part)
    supplementary = [
        int(f[2])
        for f in groups_table
        if len(f) >= 4 and f[2].isdigit() and name in f[3].split(",") and not group_part
    ]
    return ExecUser(uid, gid, tuple(sorted({gid, *supplementary})), home)
