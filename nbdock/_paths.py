"""Where nbdock keeps its state, resolved once from the environment.

Imports nothing of nbdock. ``NBDOCK_ROOT`` moves everything (tests give each run its own root);
otherwise root uses ``/var/lib/nbdock`` and others ``$XDG_DATA_HOME/nbdock``, as the design says.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Persistent state: blobs, the SQLite index, unpacked layers, container records."""
    explicit = os.environ.get("NBDOCK_ROOT")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/nbdock")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "nbdock"


def run_root() -> Path:
    """Volatile state (locks, sockets): gone after a reboot, like the processes it describes."""
    explicit = os.environ.get("NBDOCK_RUN")
    if explicit:
        return Path(explicit)
    if os.environ.get("NBDOCK_ROOT"):
        return Path(os.environ["NBDOCK_ROOT"]) / "run"
    if os.geteuid() == 0:
        return Path("/run/nbdock")
    xdg = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/nbdock-run-{os.geteuid()}"
    return Path(xdg) / "nbdock"
