"""``user[:group]`` → numeric ids, looked up in the image being built (never the host).

Used where the builder itself writes files: ``COPY --chown``, ``ADD --chown`` and the directory
``WORKDIR`` creates for the current ``USER``. Docker's rules: numbers are taken as they are;
names come from the image's ``/etc/passwd`` and ``/etc/group``; a user given without a group
uses the user's primary group when the user is a name found in ``/etc/passwd``, and the same
number as the uid otherwise.
"""

from __future__ import annotations

from nbdock.build.rootfs import RootView
from nbdock.errors import BuildError


def _table(view: RootView, path: str) -> list[list[str]]:
    data = view.read_file(path)
    if data is None:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_owner(view: RootView, spec: str, *, what: str) -> tuple[int, int]:
    """``(uid, gid)`` for ``spec``; BuildError naming ``what`` when a name is unknown."""
    user, _, group = spec.partition(":")
    if not user:
        raise BuildError(f"{what}: empty user in {spec!r}", hint="write user[:group], e.g. 1000:1000")
    primary: int | None = None
    if user.isdigit():
        uid = int(user)
    else:
        entry = next((r for r in _table(view, "/etc/passwd") if r[0] == user and len(r) > 3), None)
        if entry is None:
            raise BuildError(
                f"{what}: unknown user {user!r}: no such name in the image's /etc/passwd",
                hint="use a numeric id (e.g. 1000:1000) or create the user first (RUN adduser …)",
            )
        uid, primary = int(entry[2]), int(entry[3])
    if not group:
        return uid, primary if primary is not None else uid
    if group.isdigit():
        return uid, int(group)
    row = next((r for r in _table(view, "/etc/group") if r[0] == group and len(r) > 2), None)
    if row is None:
        raise BuildError(
            f"{what}: unknown group {group!r}: no such name in the image's /etc/group",
            hint="use a numeric gid or create the group first (RUN addgroup …)",
        )
    return uid, int(row[2])
