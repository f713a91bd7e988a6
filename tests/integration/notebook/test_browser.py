"""The quickstart in a real JupyterLab, driven by Debian's chromium through Python playwright.

JupyterLab serves on 127.0.0.1 (free port, no token, private settings/workspaces, no news or update
checks); chromium is the system one (``/usr/bin/chromium``, never ``playwright install``). The test
runs the notebook up to its detached container, checks the layer stacks of its two builds (rows,
the cache hit, a row expanding), that the status widget shows the container running, clicks the
widget's Stop button, checks that it shows it stopped, then runs the rest.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.integration.notebook.conftest import need_modules

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(app: str, root_dir: Path, tmp_path: Path) -> Iterator[str]:
    """JupyterLab (``app="jupyterlab"``) or Notebook 7 (``"notebook"``) on 127.0.0.1 over
    ``root_dir``, with private settings and no token; yields its URL, stops it after."""
    need(os.path.exists(CHROMIUM), "chromium (apt-get install chromium)")
    need_modules(app, "playwright", "ipykernel")
    settings = tmp_path / "lab-settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(OVERRIDES))
    port = free_port()
    log = (tmp_path / f"{app}.log").open("w")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    app_class = "LabApp" if app == "jupyterlab" else "JupyterNotebookApp"
    server = subprocess.Popen(
        [sys.executable, "-m", app, "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={root_dir}",
         f"--{app_class}.app_settings_dir={settings}",
         f"--{app_class}.user_settings_dir={tmp_path / 'user-settings'}",
         f"--{app_class}.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         f"--{app_class}.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / f"{app}.log").read_text()[-3000:]
                assert time.monotonic() < deadline, f"{app} did not start"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def jupyterlab(client: Any, quickstart_copy: Path, tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 over a scratch copy of the quickstart; yields its URL."""
    yield from serve("jupyterlab", quickstart_copy.parent, tmp_path)


# The notebook panel, found among the main area's widgets (``currentWidget`` follows focus, which
# moves while JupyterLab starts up).
PANEL = """const panel = (() => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.sessionContext && widget.content && widget.content.widgets) return widget;
  }
  return null;
})();"""

OPEN_NOTEBOOK = "() => {" + PANEL + """
  if (!panel || !panel.sessionContext.isReady) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && panel.content.widgets.length > 0;
}"""

RUN_CELLS = "async ([first, last]) => {" + PANEL + """
  window.jupyterapp.shell.activateById(panel.id);
  for (let i = first; i <= last; i++) {
    panel.content.activeCellIndex = i;
    await window.jupyterapp.commands.execute('notebook:run-cell');
  }
}"""

KERNEL_IDLE = "() => {" + PANEL + """
  return panel.sessionContext.session.kernel.status === 'idle';
}"""


def wait_idle(page: Any) -> None:
    page.wait_for_timeout(300)  # let the queued executions reach the kernel
    page.wait_for_function(KERNEL_IDLE, polling=200)


def test_quickstart_in_jupyterlab_layer_stack_and_status_widget(page: Any, jupyterlab: str,
                                                            quickstart_copy: Path) -> None:
    cells = json.loads(quickstart_copy.read_text())["cells"]
    detached = next(i for i, c in enumerate(cells) if "%container_run -d" in "".join(c["source"]))

    page.goto(f"{jupyterlab}/lab/tree/{quickstart_copy.name}")
    page.wait_for_function("() => !!window.jupyterapp", polling=200)
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.wait_for_function(OPEN_NOTEBOOK, polling=500)

    page.evaluate(RUN_CELLS, [0, detached])
    status = page.locator(".nbdock-status")
    status.locator(".nbdock-state-running").wait_for(state="visible")
    status.locator(".nbdock-status-logs", has_text="tick 1").wait_for(state="visible")
    wait_idle(page)
    assert page.locator(".jp-OutputArea-output", has_text="hello from a container").count() >= 1

    # the second build's layer stack: one row per step, the cache visible, rows that expand
    stacks = page.locator(".nbdock-layer-stack")
    assert stacks.count() == 2
    rebuilt = stacks.nth(1)
    assert rebuilt.locator(".nbdock-layer-row").count() == 5
    assert rebuilt.locator(".nbdock-layer-cached").count() == 1
    assert rebuilt.locator(".nbdock-layer-built").count() == 3
    assert "file changed: app.sh" in rebuilt.locator(".nbdock-layer-row").nth(2).inner_text()
    run_row = rebuilt.locator(".nbdock-layer-row").nth(3)
    files = run_row.locator(".nbdock-layer-files")
    assert not files.is_visible()
    run_row.locator("button.nbdock-layer-toggle").click()
    files.wait_for(state="visible")
    assert "last-run.txt" in files.inner_text()  # the file tree of the RUN step's layer
    assert "hello from version 2 of the app" in run_row.locator(".nbdock-layer-output").inner_text()
    assert page.locator(".nbdock-exit-failed").count() == 1  # `cat /tmp/note` in a new container

    stop = status.locator("button.nbdock-stop")
    assert stop.is_enabled()
    stop.click()
    status.locator(".nbdock-state-exited").wait_for(state="visible")
    assert "exited (0)" in status.locator(".nbdock-status-header").inner_text()
    page.wait_for_function(
        "() => document.querySelector('.nbdock-status button.nbdock-stop').disabled", polling=200)

    page.evaluate(RUN_CELLS, [detached + 1, len(cells) - 1])
    wait_idle(page)
    assert page.locator("table.nbdock-containers", has_text="quickstart-ticker").count() >= 1
    assert page.locator(".jp-OutputArea-output", has_text="exited 0").count() == 1
    outputs = page.locator(".jp-Cell").last.locator(".jp-OutputArea-output")
    assert outputs.inner_text().strip() == "[]"
