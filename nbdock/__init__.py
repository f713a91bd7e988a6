"""nbdock: a container engine that lives in Jupyter.

    import nbdock
    client = nbdock.from_env()
    client.containers.run("busybox", ["echo", "hello"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbdock.errors import NbdockError

__version__ = "0.1.0"
__all__ = [
    "NbdockError", "__version__", "from_env", "load_ipython_extension", "unload_ipython_extension",
]

if TYPE_CHECKING:
    from nbdock.client import Client


def from_env(root: Any = None) -> Client:
    """Imported lazily so ``import nbdock`` stays cheap for the CLI and the notebook extension."""
    from nbdock.client import from_env as _from_env

    return _from_env(root)


# The IPython extension hooks are entry points (like the ``nbdock`` console script): they import
# the notebook face on demand, so ``import nbdock`` never pulls in IPython.
def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbdock`` registers the magics (``%container_run``, ``%containers``, ...)."""
    from nbdock import notebook

    notebook.load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbdock``: stop live widgets' threads and remove the magics."""
    from nbdock import notebook

    notebook.unload_ipython_extension(ipython)
