"""As root: run this directory's rootless tests as an unprivileged user, through tests/rootless/run.sh.

Rootless containers are only rootless without root, so ``pytest`` run as root (CI) covers them
by running them under a user the script creates. The inner run inherits ``CI``: there, a missing
feature fails the inner test, which fails this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.conftest import REPO, need

SCRIPT = REPO / "tests" / "rootless" / "run.sh"


def test_rootless_suite_passes_as_unprivileged_user() -> None:
    need(os.geteuid() == 0, "root (to create the unprivileged user the rootless tests run as)")
    for tool, package in (
        ("useradd", "passwd"), ("usermod", "passwd"), ("runuser", "util-linux"),
        ("newuidmap", "uidmap"), ("newgidmap", "uidmap"),
    ):
        need(shutil.which(tool) is not None, f"{tool} (Debian package {package})")
    result = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=600, check=False,
    )
    report = f"--- stdout\n{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary, report
    assert " failed" not in summary and " error" not in summary, report
