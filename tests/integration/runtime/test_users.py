"""Docker's ``USER name[:group]``, resolved by the container's init against the image's own files.

The resolution (``resolve_user`` in nbdock/runtime/native/user.c) runs inside the container after
pivot_root, so the only honest check is a real container of an image whose /etc/passwd and
/etc/group we wrote (data/users/): what ``id`` and ``$HOME`` report there is what the user's code
gets. The table is the one the former unit test of the Python resolver checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbdock.errors import ContainerError
from tests.integration.conftest import built_image

pytestmark = pytest.mark.root

DATA = Path(__file__).resolve().parent / "data" / "users"
IMAGE = "nbdock-test/users:latest"
# uid, effective gid, ``id -G`` (effective gid then the supplementary list), the kernel's own view
# of the supplementary list (exactly what setgroups() was given), and the HOME the init chose.
PROBE = ["sh", "-c", "id -u; id -g; id -G; grep '^Groups:' /proc/self/status; echo $HOME"]


@pytest.fixture(scope="module")
def users_image(client: Any) -> Iterator[str]:
    """busybox plus data/users/{passwd,group}, built once for the module and removed after."""
    with built_image(client, DATA, IMAGE) as tag:
        yield tag


def _probe(output: bytes) -> tuple[int, int, set[int], tuple[int, ...], str]:
    """Parse PROBE's output: uid, gid, the groups ``id -G`` lists, the kernel's list, HOME."""
    uid, gid, id_groups, status_groups, home = output.decode().split("\n")[:5]
    kernel = tuple(int(group) for group in status_groups.removeprefix("Groups:").split())
    return int(uid), int(gid), {int(group) for group in id_groups.split()}, kernel, home


@pytest.mark.parametrize(
    ("spec", "uid", "gid", "groups", "home"),
    [
        ("", 0, 0, (0,), "/root"),
        ("root", 0, 0, (0,), "/root"),
        ("app", 1000, 1000, (50, 1000), "/home/app"),
        ("1000", 1000, 1000, (50, 1000), "/home/app"),
        ("app:staff", 1000, 50, (50,), "/home/app"),
        ("4242", 4242, 0, (0,), "/"),
        ("4242:4343", 4242, 4343, (4343,), "/"),
        ("nobody:app", 65534, 1000, (1000,), "/nonexistent"),
    ],
)
def test_user_spec_resolves_like_docker(
    client: Any, users_image: str, spec: str, uid: int, gid: int, groups: tuple[int, ...], home: str
) -> None:
    """``groups`` is the whole list handed to setgroups(): the effective gid is always in it
    (sorted), plus /etc/group memberships of the user's name only when no group was given."""
    output = client.containers.run(users_image, PROBE, user=spec, remove=True)
    got_uid, got_gid, id_groups, kernel_groups, got_home = _probe(output)
    assert (got_uid, got_gid, got_home) == (uid, gid, home), output
    assert id_groups == set(groups) | {gid}, output
    assert kernel_groups == groups, output


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ghost", "unable to find user ghost: no matching entries in passwd file"),
        ("app:ghosts", "unable to find group ghosts: no matching entries in group file"),
    ],
)
def test_unknown_names_fail_the_start_like_docker(
    client: Any, users_image: str, spec: str, message: str
) -> None:
    """A name the image does not define is a start failure (125), never a silent fallback to root;
    the command must not have run."""
    with pytest.raises(ContainerError) as raised:
        client.containers.run(users_image, ["echo", "ran"], user=spec, remove=True)
    assert raised.value.exit_status == 125
    assert message in raised.value.stderr.decode()
    assert b"ran" not in raised.value.stderr

    container = client.containers.run(users_image, ["echo", "ran"], user=spec, detach=True)
    try:
        result = container.wait()
        assert result["StatusCode"] == 125
        assert message in result["Error"]["Message"]
        assert message.encode() in container.logs()
        assert b"ran\n" not in container.logs()
    finally:
        container.remove(force=True)


def test_exec_resolves_its_own_user(client: Any, users_image: str) -> None:
    """``docker exec -u`` resolves against the running container's files, independently of the
    user the container itself runs as (root here)."""
    container = client.containers.run(users_image, ["sleep", "30"], detach=True)
    try:
        code, output = container.exec_run(PROBE, user="app")
        assert code == 0, output
        assert _probe(output) == (1000, 1000, {50, 1000}, (50, 1000), "/home/app")
        code, output = container.exec_run(["id", "-u"])
        assert (code, output) == (0, b"0\n")
        code, output = container.exec_run(["echo", "ran"], user="ghost")
        assert code == 125
        assert b"unable to find user ghost: no matching entries in passwd file" in output
        assert b"ran" not in output
    finally:
        container.stop(timeout=1)
        container.remove(force=True)
