"""Fixtures for notebook tests that start real Jupyter kernels (and, for the browser, JupyterLab).

Kernels inherit this process's environment, so they use the session's private ``NBDOCK_ROOT``
(set by the ``client`` fixture of ``tests/integration/conftest.py``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, need

QUICKSTART = REPO / "notebooks" / "01-quickstart.ipynb"
SANITIZE = REPO / "notebooks" / "sanitize.cfg"


def need_modules(*names: str) -> None:
    for name in names:
        need(importlib.util.find_spec(name) is not None, f"python package {name} (pip install -e .[test])")


@pytest.fixture
def kernel(client: Any) -> Iterator[Any]:
    """A blocking client of a fresh ipykernel with ``%load_ext nbdock`` done."""
    need_modules("jupyter_client", "ipykernel")
    from jupyter_client.manager import start_new_kernel

    manager, kernel_client = start_new_kernel(kernel_name="python3")
    try:
        reply = kernel_client.execute_interactive("%load_ext nbdock", timeout=60)
        assert reply["content"]["status"] == "ok"
        yield kernel_client
    finally:
        kernel_client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.fixture
def quickstart_copy(tmp_path: Path) -> Path:
    """The quickstart in a scratch directory, so running it never rewrites the repository's copy."""
    target = tmp_path / QUICKSTART.name
    target.write_bytes(QUICKSTART.read_bytes())
    return target


@pytest.fixture
def page() -> Iterator[Any]:
    """A headless page of Debian's chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    from tests.integration.notebook.test_browser import CHROMIUM, CHROMIUM_ARGS

    need(os.path.exists(CHROMIUM), "chromium (apt-get install chromium)")
    need_modules("playwright")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()
