"""An IPython shell with ``%load_ext nbdock`` over a private engine root holding busybox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import busybox_client, private_engine_root


@pytest.fixture(scope="module")
def engine_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with private_engine_root(tmp_path_factory.mktemp("nb-engine")) as root:
        yield root


@pytest.fixture(scope="module")
def client(engine_root: Path) -> Iterator[Any]:
    with busybox_client(engine_root) as client:
        yield client


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
