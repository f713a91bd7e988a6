"""Fixtures for the rootless tests: an engine run by an unprivileged user, with a busybox image.

These tests only mean something without root. As root (the normal CI run) they are skipped here
and run instead by ``test_run_as_user.py``, which executes ``tests/rootless/run.sh``: that script
creates an unprivileged user and runs this directory as that user, failing if anything fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbdock.runtime.linux import libc
from tests.conftest import need
from tests.integration.rootless._support import AS_ROOT_REASON

# As root, only the wrapper is collected: the others run inside it as the unprivileged user, so
# they are neither run twice nor reported as skipped.
if os.geteuid() == 0:
    collect_ignore = [
        path.name for path in Path(__file__).parent.glob("test_*.py")
        if path.name != "test_run_as_user.py"
    ]


def user_namespaces_work() -> bool:
    """Whether this user may create a user namespace (a kernel or sysctl may forbid it)."""
    pid = os.fork()
    if pid == 0:
        try:
            libc.unshare(libc.CLONE_NEWUSER)
            os._exit(0)
        except BaseException:  # noqa: BLE001 - a forked probe must never unwind
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


@pytest.fixture(scope="session")
def rootless_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() == 0:
        # Not a missing feature: as root, test_run_as_user runs these as an unprivileged user
        # (and fails, under CI, if that user cannot be made or any of them fails).
        pytest.skip(AS_ROOT_REASON)
    need(user_namespaces_work(), "unprivileged user namespaces (sysctl user.max_user_namespaces)")
    need(shutil.which("busybox") is not None or os.path.exists("/bin/busybox"),
         "busybox-static (apt-get install busybox-static)")
    given = os.environ.get("NBDOCK_ROOT")
    root = Path(given) if given else tmp_path_factory.mktemp("rootless-engine")
    previous = os.environ.get("NBDOCK_ROOT")
    os.environ["NBDOCK_ROOT"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("NBDOCK_ROOT", None)
    else:
        os.environ["NBDOCK_ROOT"] = previous


@pytest.fixture(scope="session")
def rootless_client(rootless_root: Path):  # noqa: ANN201 - nbdock.client.Client
    import nbdock

    client = nbdock.from_env(rootless_root)
    client.images.bootstrap("busybox")
    yield client
    for container in client.containers.list(all=True):
        container.remove(force=True)
