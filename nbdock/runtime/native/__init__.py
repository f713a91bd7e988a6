"""nbdock's one compiled program, ``nbdock-init`` (``*.c`` here): the container's PID 1 from spawn
to the user's command. ``build.py`` makes it; this says where it is."""

from __future__ import annotations

import os

from nbdock.errors import RuntimeFailure

INIT_BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nbdock-init")


def init_binary() -> str:
    """The program's path, or a clear error if this checkout or install never built it."""
    if not os.access(INIT_BINARY, os.X_OK):
        raise RuntimeFailure(
            f"{INIT_BINARY} is missing: nbdock was installed without building its container init "
            "(run ./dev setup, or pip install again with a C compiler: apt-get install gcc libc6-dev)"
        )
    return INIT_BINARY
