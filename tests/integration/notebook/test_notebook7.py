"""The magics in Notebook 7 (the other front end the issue names), in Debian's chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.notebook.test_browser import KERNEL_IDLE, OPEN_NOTEBOOK, RUN_CELLS, serve


def _cell(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": source}


@pytest.fixture
def small_notebook(client: Any, tmp_path: Path) -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "greeting.txt").write_text("hello from notebook 7\n")
    cells = [
        _cell("%load_ext nbdock"),
        _cell(f"%%dockerfile -t nb7-app --context {context}\nFROM busybox\n"
              "COPY greeting.txt /greeting.txt\nCMD [\"cat\", \"/greeting.txt\"]"),
        _cell("%container_run --rm nb7-app"),
        _cell("%container_run -d --name nb7-ticker busybox sh -c "
              "'trap \"exit 0\" TERM; while :; do echo tick; sleep 1; done'"),
    ]
    document = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name":
                "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb" / "nb7.ipynb"
    path.parent.mkdir()
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def notebook7(small_notebook: Path, tmp_path: Path) -> Iterator[str]:
    yield from serve("notebook", small_notebook.parent, tmp_path)


def test_magics_and_widgets_in_notebook_7(page: Any, notebook7: str, small_notebook: Path,
                                          client: Any) -> None:
    page.goto(f"{notebook7}/notebooks/{small_notebook.name}")
    page.wait_for_function("() => !!window.jupyterapp", polling=200)
    page.wait_for_function(OPEN_NOTEBOOK, polling=500)
    page.evaluate(RUN_CELLS, [0, 3])
    status = page.locator(".nbdock-status")
    status.locator(".nbdock-state-running").wait_for(state="visible")
    page.wait_for_timeout(300)
    page.wait_for_function(KERNEL_IDLE, polling=200)
    stack = page.locator(".nbdock-layer-stack")
    assert stack.count() == 1
    assert stack.locator(".nbdock-layer-row").count() == 3
    assert page.locator(".jp-OutputArea-output", has_text="hello from notebook 7").count() >= 1
    status.locator("button.nbdock-stop").click()
    status.locator(".nbdock-state-exited").wait_for(state="visible")
    assert client.containers.get("nb7-ticker").status == "exited"
    client.containers.get("nb7-ticker").remove()
