"""The quickstart notebook, executed headless (nbclient) and validated against its outputs (nbval)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.notebook.conftest import SANITIZE, need_modules

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def cell_with(notebook: Any, text: str) -> Any:
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and text in c.source]
    return cell


def plain(cell: Any) -> list[str]:
    return [o.data["text/plain"] for o in cell.outputs if "data" in o and "text/plain" in o.data]


def stdout(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def results(stack_output: Any) -> list[str]:
    """The RESULT column of a layer stack's text (columns are three or more spaces apart)."""
    rows = stack_output.data["text/plain"].splitlines()[2:-1]
    return [re.split(r"\s{3,}", row)[3] for row in rows]


def test_quickstart_runs_headless_with_text_and_widget_outputs(client, quickstart_copy: Path) -> None:
    need_modules("nbclient", "nbformat", "ipykernel")
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(quickstart_copy, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(quickstart_copy.parent)}}).execute()

    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors == []
    first_build, rebuild = [c for c in notebook.cells if c.source.startswith("%%dockerfile")]
    progress, stack = first_build.outputs
    assert WIDGET_VIEW in progress.data and WIDGET_VIEW in stack.data
    assert progress.data["text/plain"] == "build quickstart-app"
    assert stack.data["text/plain"].splitlines()[0] == "image quickstart-app:latest"
    assert results(stack) == ["done"] + ["built (--no-cache)"] * 4
    assert results(rebuild.outputs[1]) == ["done", "CACHED", "built (files changed)"] + [
        "built (earlier step rebuilt)"] * 2
    assert stdout(cell_with(notebook, "print(app_image.tags)")) == (
        "['quickstart-app:latest']\nhello from version 2 of the app\n")
    hello = cell_with(notebook, "echo hello from a container")
    assert stdout(hello) == "hello from a container\n" and plain(hello) == ["exit code 0"]
    isolated = cell_with(notebook, "I am PID $$")
    assert stdout(isolated).startswith("I am PID 1 on quickstart")
    failing = cell_with(notebook, "%container_run --rm busybox cat /tmp/note")
    assert plain(failing) == ["exit code 1 (failed)"]
    assert any("nbdock-exit-failed" in o.data.get("text/html", "") for o in failing.outputs
               if "data" in o)
    assert plain(cell_with(notebook, "int(total) * 2")) == ["24"]

    detached = cell_with(notebook, "%container_run -d")
    (widget_output,) = detached.outputs
    assert WIDGET_VIEW in widget_output.data  # the live widget ...
    assert widget_output.data["text/plain"] == (  # ... and its stable fallback
        "container quickstart-ticker (image busybox) started detached")
    model_id = widget_output.data[WIDGET_VIEW]["model_id"]
    assert model_id in notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"][
        "state"]

    (table,) = plain(cell_with(notebook, "%containers --filter"))
    assert "running   quickstart-ticker" in table
    (table,) = plain(cell_with(notebook, "%containers --all"))
    assert "exited (0)   quickstart-ticker" in table
    assert "busybox      latest" in plain(cell_with(notebook, "%images busybox"))[0]


def test_quickstart_passes_nbval(client, quickstart_copy: Path) -> None:
    """``pytest --nbval``: each cell's fresh text output matches the stored one (sanitized)."""
    need_modules("nbval")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval",
         "--nbval-sanitize-with", str(SANITIZE), str(quickstart_copy)],
        cwd=quickstart_copy.parent, env=dict(os.environ), capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
