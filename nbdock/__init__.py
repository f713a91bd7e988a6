"""nbdock: a container engine that lives in Jupyter.

    import nbdock
    client = nbdock.from_env()
    client.containers.run("busybox", ["echo", "hello"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbdock.errors import NbdockError

__version__ = "0.1.0"
__all__ = ["NbdockError", "__version__", "from_env"]

if TYPE_CHECKING:
    from nbdock.client import Client


def from_env(root: Any = None) -> Client:
    """Imported lazily so ``import nbdock`` stays cheap for the CLI and the notebook extension."""
    from nbdock.client import from_env as _from_env

    return _from_env(root)
