"""An IPython shell with ``%load_ext nbdock`` over a private engine root holding busybox."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need


@pytest.fixture(scope="module")
def engine_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need(os.geteuid() == 0, "root (containers need namespaces, mounts and cgroups)")
    need(shutil.which("busybox") is not None or os.path.exists("/bin/busybox"),
         "busybox-static (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("nb-engine")
    previous = os.environ.get("NBDOCK_ROOT")
    os.environ["NBDOCK_ROOT"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("NBDOCK_ROOT", None)
    else:
        os.environ["NBDOCK_ROOT"] = previous


@pytest.fixture(scope="module")
def client(engine_root: Path) -> Iterator[Any]:
    import nbdock

    client = nbdock.from_env(engine_root)
    client.images.bootstrap("busybox")
    yield client
    for container in client.containers.list(all=True):
        container.remove(force=True)


@pytest.fixture(scope="module")
def ip(client: Any) -> Iterator[Any]:
    """The shell, with the extension loaded through ``%load_ext`` as a user would."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbdock")
    yield shell
    shell.run_line_magic("unload_ext", "nbdock")


def magics(ip: Any) -> Any:
    """The loaded ``NbdockMagics`` instance (to reach its status widgets)."""
    return ip.magics_manager.registry["NbdockMagics"]
